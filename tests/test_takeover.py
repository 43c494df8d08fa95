"""A worker of the new code takes over engagements begun by a worker of the code before a change.

Written for issue 18's change of what a follow-through tells its engagement (`parent-hears-what-matters`), and kept
for every deploy: an engagement already in follow-through when a new worker takes over must finish its check-ins
as it began them, nothing lost, nothing sent twice. The test runs the real worker of an earlier commit (`git
archive`, as a subprocess, as a deployment would), stops it the way a deploy does (SIGTERM) while check-ins are
going out, and lets the current code finish the engagement. Two earlier commits: the last before issue 18's work,
and the last before the check-in loop (`checkins-in-one-loop`). Their histories are kept as `takeover_*` in
tests/histories/ (ENGAGE_RECORD_HISTORIES=1), which tests/test_replay.py replays with the rest.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from adapters.engagement_client import engagement_status
from devstack.mailsink import MailSink
from schemas.events import MessageSent, Phase
from schemas.settings import Settings
from schemas.updates import ChooseFormat, RecordOutcomes, ReportMetric, ScheduleSession
from store.events import read_log
from tests.conftest import unique_id
from tests.lifecycle import action, outcomes, save_history, scoping, start
from tests.mailbox import sink_mails
from worker import worker_options
from workflows.engagement import EngagementWorkflow as EW
from workflows.registry import WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent
# Earlier commits whose workers begin the engagement, each with the name its history is kept under: each
# action's follow-through in a workflow of its own, which tells the engagement of every check-in (31de0cb) or only
# of what matters (642d28b, PARENT_HEARS_WHAT_MATTERS); the current code runs them in one check-in loop
# (CHECKINS_IN_ONE_LOOP). The histories of a takeover from 07eabac (session 9) stay, as takeover_v7_closed*. CI runs
# in a full clone of main, where these commits are always there.
BEFORE = {
    "31de0cb": "takeover_closed",  # the last commit of session 5, before issue 18's work
    "642d28b": "takeover_v8_closed",  # the last before the check-in loop
}


@pytest.fixture(params=sorted(BEFORE), ids=lambda commit: f"from-{commit}")
def code_before(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    commit: str = request.param
    dest = tmp_path_factory.mktemp(f"before-{commit}")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=False)
    assert archive.returncode == 0, f"git archive {commit}: {archive.stderr.decode()} (a full clone is needed)"
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return commit, dest


def old_worker(code: Path, settings: Settings, dev_env: WorkflowEnvironment, task_queue: str,
               ready: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(
        PYTHONPATH=str(code),  # the old modules, not this checkout's (the venv's editable install points here)
        ENGAGE_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        ENGAGE_TEMPORAL_NAMESPACE=dev_env.client.namespace,
        ENGAGE_DATABASE_URL=settings.database_url.get_secret_value(),
        ENGAGE_SMTP_URL=settings.smtp_url.get_secret_value(),
        ENGAGE_CALDAV_URL=settings.caldav_url,
        ENGAGE_TASK_QUEUE=task_queue,
        ENGAGE_DEV_STACK="1",
        ENGAGE_LOG_FORMAT="json",
    )
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "worker", "--ready-file", str(ready)], cwd=code, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


async def wait_for(what: str, check: object, timeout: float = 60) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_an_engagement_begun_before_the_change_finishes_on_the_new_worker(
    dev_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
    code_before: tuple[str, Path], tmp_path: Path,
) -> None:
    commit, code = code_before
    client = dev_env.client
    eid = unique_id("takeover")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    ready = tmp_path / "ready"
    proc = old_worker(code, settings, dev_env, task_queue, ready, tmp_path / "old-worker.log")
    try:
        async def polling() -> bool:
            return ready.exists()

        await wait_for("the old worker to poll its task queue", polling)
        today = datetime.now(UTC).date()
        s = scoping(eid, cadence="3s", horizon="27s")
        s = s.model_copy(update={"timezone": "UTC", "constraints": s.constraints.model_copy(update={
            "earliest": today, "latest": today + timedelta(days=30)})})
        handle = await start(client, task_queue, s)
        await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
        session_at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
        await handle.execute_update(EW.schedule_session,
                                    ScheduleSession(on=session_at.date(), at=session_at.strftime("%H:%M:%S"),
                                                    days=2))
        await asyncio.sleep((session_at - datetime.now(UTC)).total_seconds() + 0.5)
        await handle.execute_update(EW.record_outcomes, RecordOutcomes(outcomes=outcomes(
            action("A1", "Ben Wu", "ben@acme.example", "Asia/Tokyo", today + timedelta(days=60), 0, 100),
            action("A2", "Ana Lima", "ana@acme.example", "America/Sao_Paulo", today + timedelta(days=60), 0, 5))))

        at_takeover: dict[str, int] = {}

        async def two_checkins_each() -> bool:
            # From each action's follow-through (642d28b's tell the engagement only what matters).
            status = await engagement_status(client, eid)
            at_takeover.update({a.action_id: a.checkins_sent for a in status.actions})
            return bool(status.actions) and all(a.checkins_sent >= 2 for a in status.actions)

        await wait_for("two check-ins of each action on the old worker", two_checkins_each)
    finally:
        proc.terminate()  # as a deploy stops a worker: in-flight activities may finish, then it exits
        proc.wait(timeout=30)

    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(settings, pool), **worker_options(settings)):
        # An owner answers through the new worker; the old follow-through applies it and gives its verdict.
        answered = await handle.execute_update(EW.report_metric, ReportMetric(action_id="A1", value=40),
                                               id=f"{eid}-answer")
        assert answered.values_received == 1
        final = await asyncio.wait_for(handle.result(), timeout=120)
        await save_history(handle, BEFORE[commit])

    assert final.phase is Phase.closed
    log = await read_log(pool, eid)
    assert [e.seq for e in log] == list(range(1, len(log) + 1)), "no gap and no duplicate in the log"
    for view in final.actions:
        numbers = [e.event.number for e in log  # type: ignore[union-attr]
                   if e.event.type == "checkin_requested" and e.event.action_id == view.action_id]
        assert numbers == list(range(1, view.checkins_sent + 1)), f"{view.action_id}: each check-in once"
        assert view.checkins_sent > at_takeover[view.action_id] + 2, "the new worker went on with the check-ins"
        assert view.closed_reason == "horizon"
    assert sum(e.event.type == "metric_reported" for e in log) == 1
    sent = [e.event for e in log if isinstance(e.event, MessageSent)]
    at_sink = Counter(m["Message-ID"] for m in sink_mails(mail_sink))
    assert {m.message_id: at_sink[m.message_id] for m in sent} == {m.message_id: 1 for m in sent}, \
        "every message recorded as sent reached the sink exactly once"
    checkin_mails = [m for m in sent if m.kind.value == "checkin_request"]
    assert len(checkin_mails) == sum(v.checkins_sent for v in final.actions)
