"""The `engage` command through the real executable, against the Temporal dev server and a worker.

One engagement goes from `start` to `cancel` on the dev server's real clock: its session is booked at the next
whole minute (session times are HH:MM in the client's zone) and the bad-input tests run while that minute
comes. Every bad input is exit 2 with one line naming the field or the reason; an unreachable Temporal is
exit 3 naming it and `engage dev`.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from devstack.process import free_port
from domain.format import recommend as recommend_in_process
from schemas.events import Phase
from schemas.recommendation import EngagementFormat, Recommendation
from schemas.report import Report
from schemas.scoping import Scoping
from schemas.settings import Settings
from schemas.status import ActionStatus
from schemas.views import EngagementList, EngagementStatus, StartResult, Timeline
from tests.conftest import unique_id
from tests.lifecycle import running_worker

ROOT = Path(__file__).resolve().parent.parent
ENGAGE = str(Path(sys.executable).parent / "engage")
EXAMPLES = ROOT / "examples"
CLIENT_TZ = ZoneInfo("Europe/Berlin")  # the zone of examples/scoping.yaml
CONTRACT_COMMANDS = ("dev", "worker", "recommend", "start", "choose", "schedule", "preread", "session", "checkin",
                     "snooze", "cancel", "status", "list", "timeline", "report", "preview", "demo")


# --- running the command ------------------------------------------------------------------------------


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"engage {' '.join(self.args)} -> {self.code}\nstdout: {self.out}\nstderr: {self.err}"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env["COLUMNS"] = "200"  # rich wraps --help to the terminal width
    env.update(extra)
    return env


async def engage(env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 60) -> Run:
    """The real `engage`, without blocking the event loop the worker runs in."""
    proc = await asyncio.create_subprocess_exec(
        ENGAGE, *args, env=env, cwd=cwd or ROOT / "tests",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"engage {' '.join(args)} still running after {timeout} s") from None
    assert proc.returncode is not None
    return Run(args, proc.returncode, out.decode(), err.decode())


async def ok(env: dict[str, str], *args: str) -> Run:
    result = await engage(env, *args)
    assert result.code == 0, str(result)
    assert "Traceback" not in result.out + result.err, str(result)
    return result


def bad_input(result: Run, *named: str, code: int = 2) -> str:
    """Exit `code`, exactly one line on stderr mentioning every `named`, and no traceback anywhere."""
    assert result.code == code, str(result)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, str(result)
    for name in named:
        assert name in lines[0], str(result)
    assert "Traceback" not in result.out + result.err, str(result)
    return lines[0]


async def status(env: dict[str, str], engagement_id: str) -> EngagementStatus:
    return EngagementStatus.model_validate_json((await ok(env, "status", engagement_id, "--json")).out)


async def wait_status(env: dict[str, str], engagement_id: str, what: str,
                      condition: Callable[[EngagementStatus], bool], timeout: float = 120) -> EngagementStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await status(env, engagement_id)
        if condition(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{engagement_id}: not {what} after {timeout} s: {current.model_dump_json()}")
        await asyncio.sleep(0.25)


# --- input files ----------------------------------------------------------------------------------------


def scoping_data(engagement_id: str, today: Any) -> dict[str, Any]:
    """examples/scoping.yaml with a unique id, a window from today (in the client's zone) and a seconds
    cadence, so that the dev server's real clock reaches the session and follow-through within the test."""
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    data["id"] = engagement_id
    data["constraints"].update(earliest=today.isoformat(), latest=(today + timedelta(days=30)).isoformat())
    # Long enough that the horizon does not close the engagement before the test cancels it.
    data["follow_through"] = {"cadence": "20s", "horizon": "5m", "escalate_after_missed": 2}
    return data


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def next_minute(at_least: timedelta) -> datetime:
    """The next whole minute in the client's zone at least `at_least` from now (session times are HH:MM)."""
    local_now = datetime.now(CLIENT_TZ)
    return (local_now + at_least).replace(second=0, microsecond=0) + timedelta(minutes=1)


# --- fixtures ---------------------------------------------------------------------------------------------


@asynccontextmanager
async def worker_env(dev_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool,
                     **extra: str) -> AsyncIterator[dict[str, str]]:
    """A worker in this event loop, and the environment that points `engage` at it and the test services."""
    async with running_worker(dev_env.client, settings, pool) as task_queue:
        yield clean_env(
            ENGAGE_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
            ENGAGE_TEMPORAL_NAMESPACE=dev_env.client.namespace,
            ENGAGE_DATABASE_URL=settings.database_url.get_secret_value(),
            ENGAGE_TASK_QUEUE=task_queue,
            ENGAGE_SMTP_URL=settings.smtp_url.get_secret_value(),
            ENGAGE_CALDAV_URL=settings.caldav_url,
            **extra,
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cli_env(dev_env: WorkflowEnvironment, settings: Settings,
                  pool: asyncpg.Pool) -> AsyncIterator[dict[str, str]]:
    """worker_env, with the tests' cadences of seconds (scoping_data) allowed by saying so."""
    async with worker_env(dev_env, settings, pool, ENGAGE_MIN_CADENCE="1s") as env:
        yield env


@pytest.fixture(scope="module")
def nowhere_env() -> dict[str, str]:
    """Nothing listens on these ports: a command that reached a service would exit 3, not 2."""
    return clean_env(ENGAGE_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
                     ENGAGE_DATABASE_URL=f"postgresql://engage@127.0.0.1:{free_port()}/engage")


@dataclass
class Booked:
    engagement_id: str
    scoping: Scoping
    recommendation: Recommendation
    started: StartResult
    session_start: datetime  # in the client's zone
    before_session: EngagementStatus
    files: Path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def booked(cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Booked:
    """An engagement started, its format overridden, its session booked at the next whole minute at least
    30 s away, a pre-read added and acknowledged: all through the CLI. The tests in between run while the
    dev server's clock reaches the session."""
    files = tmp_path_factory.mktemp("cli")
    engagement_id = unique_id("cli")
    data = scoping_data(engagement_id, datetime.now(CLIENT_TZ).date())
    scoping_file = write_yaml(files / "scoping.yaml", data)

    recommended = Recommendation.model_validate_json((await ok(cli_env, "recommend", str(scoping_file), "--json")).out)
    started = StartResult.model_validate_json((await ok(cli_env, "start", str(scoping_file), "--json")).out)
    await ok(cli_env, "choose", engagement_id, "--format", "strategy_session", "--reason", "one day is what they have")

    session_start = next_minute(at_least=timedelta(seconds=30))
    await ok(cli_env, "schedule", engagement_id, "--on", session_start.date().isoformat(),
             "--at", session_start.strftime("%H:%M"), "--days", "0.5")
    await ok(cli_env, "preread", "add", engagement_id, "--title", "Market memo", "--url", "https://example.com/memo",
             "--days-before", "1")
    await ok(cli_env, "preread", "ack", engagement_id, "--participant", "ana@acme.example")
    before = await wait_status(cli_env, engagement_id, "in pre_reads", lambda s: s.phase is Phase.pre_reads)
    return Booked(engagement_id, Scoping.model_validate(data), recommended, started, session_start, before, files)


# --- before the session -----------------------------------------------------------------------------------


async def test_recommend_start_choose_schedule_and_prereads(booked: Booked) -> None:
    eid = booked.engagement_id
    assert booked.recommendation == recommend_in_process(booked.scoping)
    assert booked.recommendation.format is EngagementFormat.combined
    assert booked.started.engagement_id == eid
    assert booked.started.workflow_id == f"engagement/{eid}"
    assert booked.started.recommendation == booked.recommendation

    s = booked.before_session
    assert s.engagement_id == eid and s.client == "Acme Corp" and s.timezone == "Europe/Berlin"
    # `choose` overrode the recommendation: the format and the recommendation shown now follow the choice.
    assert s.format is EngagementFormat.strategy_session
    assert s.recommendation.format is EngagementFormat.strategy_session
    assert s.session is not None
    assert s.session.starts_at == booked.session_start.astimezone(UTC)
    assert s.session.ends_at == s.session.starts_at + timedelta(hours=4)  # half of an 8-hour day
    assert s.session.days == 0.5 and s.session.timezone == "Europe/Berlin"
    [preread] = s.prereads
    assert (preread.preread_id, preread.title, preread.url) == ("P1", "Market memo", "https://example.com/memo")
    assert preread.acknowledged == ["ana@acme.example"]
    assert preread.missing == ["ben@acme.example", "chloe@acme.example"]


# --- bad input: refused before any service is contacted -------------------------------------------------


def _example(**changes: Any) -> str:
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _with_consultant_email(address: str) -> str:
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    data["consultant"]["email"] = address
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]
) + "\n"

BAD_FILES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "malformed_yaml": ("client: [Acme Corp\ntimezone: Europe/Berlin\n", ("malformed YAML", "line")),
    "unknown_field": (_example(surprise=1), ("surprise", "Extra inputs are not permitted")),
    "bad_email": (_with_consultant_email("dana-at-consultancy"), ("consultant.email", "not a valid email")),
    "unknown_time_zone": (_example(timezone="Mars/Olympus_Mons"), ("timezone", "Mars/Olympus_Mons", "IANA")),
    "over_1_mib": (_example() + "# " + "x" * (1024 * 1024) + "\n", ("1 MiB",)),
    "binary": (bytes(range(256)) * 16, ("not UTF-8",)),
    "billion_laughs": (BILLION_LAUGHS, ("aliases",)),
    "top_level_list": ("- client: Acme Corp\n- timezone: Europe/Berlin\n", ("expected a YAML mapping",)),
}


@pytest.mark.parametrize("command", ["recommend", "start"])
@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_a_bad_scoping_file_is_exit_2_and_one_line(case: str, command: str, nowhere_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    content, named = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    result = await engage(nowhere_env, command, str(path))
    bad_input(result, *named)


async def test_a_bad_outcomes_file_is_exit_2_and_one_line(nowhere_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "outcomes.yaml"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    bad_input(await engage(nowhere_env, "session", "record", "some-engagement", str(path)), "aliases")


async def test_negative_snooze_days_is_exit_2(nowhere_env: dict[str, str]) -> None:
    bad_input(await engage(nowhere_env, "snooze", "some-engagement", "--action", "A2", "--days", "-2"), "days")


async def test_an_unknown_format_is_exit_2_naming_the_option(nowhere_env: dict[str, str]) -> None:
    line = bad_input(await engage(nowhere_env, "choose", "some-engagement", "--format", "retreat"), "--format")
    assert "retreat" in line and "strategy_session" in line


# --- bad input: refused by the server or the workflow -------------------------------------------------


async def test_an_unknown_engagement_is_exit_2(cli_env: dict[str, str]) -> None:
    nobody = unique_id("nobody")
    bad_input(await engage(cli_env, "status", nobody), "unknown engagement", nobody)
    bad_input(await engage(cli_env, "checkin", nobody, "--action", "A1", "--value", "3"), "unknown engagement",
              nobody)
    bad_input(await engage(cli_env, "timeline", nobody), "unknown engagement", nobody)
    bad_input(await engage(cli_env, "report", nobody), "unknown engagement", nobody)


async def test_an_unknown_action_is_exit_2(cli_env: dict[str, str], booked: Booked) -> None:
    line = bad_input(await engage(cli_env, "checkin", booked.engagement_id, "--action", "A9", "--value", "1"),
                     "action", "A9")
    assert "unknown action" in line


async def test_a_session_outside_the_window_is_exit_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    eid = unique_id("cli-window")
    today = datetime.now(CLIENT_TZ).date()
    scoping_file = write_yaml(tmp_path / "scoping.yaml", scoping_data(eid, today))
    await ok(cli_env, "start", str(scoping_file))
    await ok(cli_env, "choose", eid, "--format", "combined")
    try:
        late = (today + timedelta(days=45)).isoformat()
        line = bad_input(await engage(cli_env, "schedule", eid, "--on", late), "on", late)
        assert "outside the scoping window" in line
        bad_input(await engage(cli_env, "schedule", eid, "--on", "tomorrow"), "--on", "YYYY-MM-DD")
        # A rejected update writes nothing: the engagement is still waiting for its date.
        s = await wait_status(cli_env, eid, "in scheduling", lambda s: s.phase is Phase.scheduling)
        assert s.session is None
    finally:
        await ok(cli_env, "cancel", eid, "--reason", "test over")


# --- services that cannot be reached -----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("start", str(EXAMPLES / "scoping.yaml")),
    ("status", "acme-2027-q1"),
    ("checkin", "acme-2027-q1", "--action", "A1", "--value", "40"),
], ids=["start", "status", "checkin"])
async def test_temporal_stopped_is_exit_3_naming_it_and_engage_dev(args: tuple[str, ...],
                                                                   nowhere_env: dict[str, str]) -> None:
    line = bad_input(await engage(nowhere_env, *args), "Temporal", "engage dev", code=3)
    assert nowhere_env["ENGAGE_TEMPORAL_ADDRESS"] in line


# --- the command itself -----------------------------------------------------------------------------------


async def test_help_lists_every_contract_command() -> None:
    result = await ok(clean_env(), "--help")
    for command in CONTRACT_COMMANDS:
        # A command's row: its name at the start of a line of the commands panel (not in a wrapped description).
        assert re.search(rf"(?m)^[│|]?\s{{0,2}}{command}\s", result.out), f"{command} missing:\n{result.out}"


async def test_importing_the_cli_does_not_import_temporalio() -> None:
    """`engage --help` and input errors stay fast: the Temporal SDK is imported by the commands that use it."""
    code = "import sys, cli.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'temporalio'))"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=ROOT, env=clean_env(),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "[]", out.decode()


# --- the session and its follow-through --------------------------------------------------------------------


def outcomes_data(today: Any) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / "outcomes.yaml").read_text())
    data.pop("held_on", None)
    for n, action in enumerate(data["actions"]):
        action["due"] = (today + timedelta(days=10 * (n + 1))).isoformat()
    return data


async def test_session_follow_through_reads_and_cancel(cli_env: dict[str, str], booked: Booked) -> None:
    eid = booked.engagement_id
    files = booked.files

    # Outcomes are refused until the session starts; then the engagement is in `session`.
    wait = (booked.session_start - datetime.now(CLIENT_TZ)).total_seconds()
    await asyncio.sleep(max(0.0, wait))
    await wait_status(cli_env, eid, "in session", lambda s: s.phase is Phase.session)

    outcomes_file = write_yaml(files / "outcomes.yaml", outcomes_data(datetime.now(CLIENT_TZ).date()))
    recorded = await ok(cli_env, "session", "record", eid, str(outcomes_file))
    assert "A1" in recorded.out and "A2" in recorded.out
    s = await wait_status(cli_env, eid, "following through with both check-ins planned",
                          lambda s: s.phase is Phase.follow_through and len(s.actions) == 2
                          and all(a.next_checkin_at is not None for a in s.actions))
    assert s.outcomes_recorded_at is not None and s.horizon_end == s.outcomes_recorded_at + timedelta(minutes=5)
    a2_before = next(a for a in s.actions if a.action_id == "A2").next_checkin_at
    assert a2_before is not None

    # snooze: A2's next check-in moves by 3 days (from wherever it stood when the snooze arrived).
    await ok(cli_env, "snooze", eid, "--action", "A2", "--days", "3")
    # checkin: the value is recorded and gives the action a status.
    checked = await ok(cli_env, "checkin", eid, "--action", "A1", "--value", "40", "--note", "first week")
    assert "A1" in checked.out and "on_track" in checked.out
    # block: logged, on the action's view, and the consultant told (the workflow sends the mail).
    blocked = await ok(cli_env, "block", eid, "--action", "A2", "--reason", "waiting for [legal] sign-off")
    assert "blocked (waiting for [legal] sign-off)" in blocked.out

    s = await status(cli_env, eid)
    assert s.phase is Phase.follow_through and s.format is EngagementFormat.strategy_session
    actions = {a.action_id: a for a in s.actions}
    a1, a2 = actions["A1"], actions["A2"]
    assert a1.last_value == 40 and a1.values_received == 1
    assert a1.status is ActionStatus.on_track  # 20 % done a few seconds into ten days
    assert a1.closed_reason is None and a1.owner.email == "ben@acme.example"
    assert a2.snoozes == 1 and a2.status is ActionStatus.no_data
    assert a2.blocked_reason == "waiting for [legal] sign-off" and a1.blocked_reason is None
    assert a2.next_checkin_at is not None and a2.next_checkin_at >= a2_before + timedelta(days=3)

    # list: every engagement; --phase filters.
    listed = EngagementList.model_validate_json((await ok(cli_env, "list", "--json")).out)
    mine = [e for e in listed.engagements if e.engagement_id == eid]
    assert len(mine) == 1 and mine[0].phase is Phase.follow_through and mine[0].client == "Acme Corp"
    assert mine[0].format == "strategy_session" and mine[0].next_checkin_at is not None
    following = EngagementList.model_validate_json((await ok(cli_env, "list", "--phase", "follow_through",
                                                             "--json")).out)
    assert eid in {e.engagement_id for e in following.engagements}
    assert all(e.phase is Phase.follow_through for e in following.engagements)
    closed = EngagementList.model_validate_json((await ok(cli_env, "list", "--phase", "closed", "--json")).out)
    assert eid not in {e.engagement_id for e in closed.engagements}

    # timeline: the event log, oldest first, seq 1..n, the lifecycle in order.
    timeline = Timeline.model_validate_json((await ok(cli_env, "timeline", eid, "--json")).out)
    assert timeline.engagement_id == eid
    assert [e.seq for e in timeline.events] == list(range(1, len(timeline.events) + 1))
    types = [e.event.type for e in timeline.events]
    firsts = [types.index(t) for t in ("engagement_started", "format_chosen", "session_scheduled", "preread_added",
                                       "preread_acknowledged", "outcomes_recorded", "action_assigned")]
    assert firsts == sorted(firsts), types
    assert types.index("outcomes_recorded") < types.index("action_snoozed")
    assert types.index("outcomes_recorded") < types.index("metric_reported")
    phases = [e.event.phase for e in timeline.events if e.event.type == "phase_entered"]
    assert phases == [Phase.scoping, Phase.format_choice, Phase.scheduling, Phase.pre_reads, Phase.session,
                      Phase.action_assignment, Phase.follow_through]
    chosen = next(e.event for e in timeline.events if e.event.type == "format_chosen")
    assert (chosen.format, chosen.recommended, chosen.reason) == (
        EngagementFormat.strategy_session, EngagementFormat.combined, "one day is what they have")
    snoozed = next(e.event for e in timeline.events if e.event.type == "action_snoozed")
    assert (snoozed.action_id, snoozed.days, snoozed.next_checkin_at) == ("A2", 3, a2.next_checkin_at)
    reported = next(e.event for e in timeline.events if e.event.type == "metric_reported")
    assert (reported.action_id, reported.value, reported.note, reported.status) == (
        "A1", 40, "first week", ActionStatus.on_track)

    # report: json (the model), html to a file, markdown on stdout.
    report = Report.model_validate_json((await ok(cli_env, "report", eid, "--format", "json")).out)
    assert report.engagement_id == eid and report.phase is Phase.follow_through
    assert report.format is EngagementFormat.strategy_session and report.format_confirmed
    assert [d.text for d in report.decisions] == ["Consolidate the two sales teams by Q2"]
    assert [v.option for v in report.dot_votes] == ["Expand to the Nordics", "Self-serve tier"]
    by_id = {a.action_id: a for a in report.actions}
    assert [(p.value, p.status, p.note) for p in by_id["A1"].history] == [(40, ActionStatus.on_track, "first week")]
    assert by_id["A2"].snoozes == 1 and by_id["A2"].history == []
    html_file = files / "report.html"
    written = await ok(cli_env, "report", eid, "--format", "html", "-o", str(html_file))
    assert str(html_file) in written.out.replace("\n", "")
    html = html_file.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "<svg" in html
    assert eid in html and "Launch the self-serve tier" in html
    markdown = await ok(cli_env, "report", eid)
    assert eid in markdown.out and "Cut onboarding time" in markdown.out

    # cancel: follow-through stops, the engagement ends cancelled.
    await ok(cli_env, "cancel", eid, "--reason", "client postponed")
    s = await wait_status(cli_env, eid, "cancelled", lambda s: s.phase is Phase.cancelled)
    assert s.cancel_reason == "client postponed"
    assert {a.closed_reason for a in s.actions} == {"cancelled"}
    assert all(a.next_checkin_at is None for a in s.actions)
    cancelled = EngagementList.model_validate_json((await ok(cli_env, "list", "--phase", "cancelled", "--json")).out)
    assert eid in {e.engagement_id for e in cancelled.engagements}
    timeline = Timeline.model_validate_json((await ok(cli_env, "timeline", eid, "--json")).out)
    assert [e.seq for e in timeline.events] == list(range(1, len(timeline.events) + 1))
    assert "engagement_cancelled" in [e.event.type for e in timeline.events]
    # An ended engagement refuses further input as bad input, saying it has ended (it is not "unknown").
    line = bad_input(await engage(cli_env, "checkin", eid, "--action", "A1", "--value", "50"), eid, "cancelled")
    assert "unknown" not in line
