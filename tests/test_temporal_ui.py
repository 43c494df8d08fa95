"""The Temporal UI of a real dev server, seen by headless Chromium, and the visibility queries of
docs/operations.md run by the `temporal` CLI against the same server.

Three engagements are started by the real `engage start` command and run by a real worker (Postgres, SMTP sink
and Radicale from conftest) until they wait in format_choice. The UI must list all three under
EngagementPhase="format_choice" and show an engagement's static summary on its page. A few probe workflows
give the other queries something to find: one with actions at risk and a check-in due today, one whose
activity keeps failing, one whose workflow task keeps failing.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`): `--dump-dom` with a
virtual time budget renders the list, but never returns on a running workflow's page, whose history request
is a long poll that holds virtual time still.

`ENGAGE_UPDATE_SCREENSHOTS=1` also writes the list's screenshot to docs/img/temporal-ui.png (the README's).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
import pytest_asyncio
import yaml
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from adapters.temporal import connect
from devstack.process import free_port
from devstack.temporal import TemporalDevServer, temporal_binary
from schemas.events import Phase
from schemas.settings import Settings
from schemas.views import EngagementStatus, StartResult
from store.events import read_log
from tests.lifecycle import EXAMPLES, running_worker
from workflows import search_attributes as sa
from workflows.engagement import EngagementWorkflow

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
SCREENSHOT = ROOT / "docs" / "img" / "temporal-ui.png"
ENGAGE = Path(sys.executable).parent / "engage"
WINDOW = (1400, 900)
PHASE_QUERY = 'EngagementPhase="format_choice"'
PROBE_QUEUE_UNPOLLED = "visibility-probe-unpolled"
AT_RISK_PROBE = "probe/at-risk-due-today"
FAILING_ACTIVITY_PROBE = "probe/failing-activity"
BROKEN_TASK_PROBE = "probe/broken-workflow-task"
# List columns for the screenshot: the engagement's own attributes next to the id (the UI keeps them in
# localStorage under this key; if a UI version renames it, the list falls back to its default columns).
UI_COLUMNS_KEY = "namespace-workflow-table-columns"
UI_COLUMNS = ["Status", "Workflow ID", "ClientName", "EngagementPhase", "EngagementFormat", "Start"]


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is not installed. The browser test needs the Debian package `chromium`; .ci/run "
                    "installs it when missing (apt-get install -y --no-install-recommends chromium).",
                    pytrace=False)
    return found


# --- headless Chromium over the DevTools protocol --------------------------------------------------------------


_PAGE_TEXT = (
    "[document.body ? document.body.innerText : '', ...Array.from(document.querySelectorAll('iframe')).map(f => {"
    " try { return f.contentDocument.body.innerText } catch (e) { return '' } })].join('\\n')"
)
# Runs in the child: the pipe ends become fds 3 and 4 (inheritable), then the browser replaces the process.
_AS_FDS_3_AND_4 = (
    "import os, sys\n"
    "r, w = int(sys.argv[1]), int(sys.argv[2])\n"
    "os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def _above(fd: int, lowest: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return moved


class HeadlessChromium:
    """One page of a headless Chromium, driven with DevTools protocol messages on a pipe (NUL-separated JSON on
    the browser's fds 3 and 4): no websocket library, no driver download."""

    def __init__(self, binary: str, profile: Path, window: tuple[int, int] = WINDOW) -> None:
        command_r, self._command_w = os.pipe()
        self._events_r, events_w = os.pipe()
        # The browser's ends move above 9 first, so that placing them at 3 and 4 never overwrites one of them.
        command_r, events_w = _above(command_r, 10), _above(events_w, 10)
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--hide-scrollbars", f"--window-size={window[0]},{window[1]}", "--remote-debugging-pipe",
                "about:blank"]
        # The protocol expects its pipes as fds 3 and 4 of the browser; a small Python trampoline puts them there.
        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _AS_FDS_3_AND_4, str(command_r), str(events_w), *args],
                                         pass_fds=(command_r, events_w), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        os.close(command_r)
        os.close(events_w)
        self._buffer = b""
        self._next_id = 0
        self._session = ""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", page=True, width=window[0], height=window[1],
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.enable", page=True)

    def call(self, method: str, *, page: bool = False, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if page:
            message["sessionId"] = self._session
        os.write(self._command_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                remaining = deadline - time.monotonic()
                ready, _, _ = select.select([self._events_r], [], [], max(remaining, 0))
                if not ready:
                    raise TimeoutError(f"Chromium did not answer {method} within {timeout:.0f} s")
                chunk = os.read(self._events_r, 1 << 20)
                if not chunk:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"Chromium exited (code {self.proc.poll()}) during {method}:\n{tail}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", page=True, expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def text(self) -> str:
        """The page's text, with that of its iframes (the UI renders markdown, e.g. summaries, in iframes)."""
        return str(self.evaluate(_PAGE_TEXT) or "")

    def open(self, url: str, expect: Iterable[str], timeout: float = 45.0) -> str:
        """Load `url` and wait until the page's text contains every expected string; returns that text."""
        wanted = list(expect)
        self.call("Page.navigate", page=True, url=url)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(w in text for w in wanted):
                time.sleep(1.0)  # let the rest of the page (counts, fonts) settle before anyone looks at it
                return self.text()
            time.sleep(0.25)
        missing = [w for w in wanted if w not in text]
        raise AssertionError(f"{url}: {missing} not on the page after {timeout:.0f} s; the page said:\n{text[:3000]}")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", page=True, format="png")["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._command_w)
        os.close(self._events_r)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- probe workflows: something for the at-risk, due-today and failure queries to find -----------------------


@activity.defn(name="probe_send_checkin")
async def probe_send_checkin() -> None:
    raise RuntimeError("SMTP relay refused the connection (probe)")


@workflow.defn(name="FailingActivityProbe")
class FailingActivityProbe:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            probe_send_checkin, start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                     maximum_interval=timedelta(seconds=1)),
            summary="Send check-in 1 (probe: the relay refuses)")


@workflow.defn(name="BrokenTaskProbe")
class BrokenTaskProbe:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug in workflow code (probe)")  # not an ApplicationError: the task fails, retried


class UiDevServer(TemporalDevServer):
    """The dev server of `engage dev` (search attributes registered, UI served), plus the dynamic config that makes
    Temporal flag workflows whose tasks keep failing: after 2 failures here, so the test need not wait for 5."""

    def command(self) -> list[str]:
        return [*super().command(), "--dynamic-config-value",
                "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2"]


# --- the stack: server, worker, three engagements, probes -----------------------------------------------------


@dataclass
class Engagement:
    engagement_id: str
    workflow_id: str
    run_id: str
    client_name: str
    summary: str


@dataclass
class Stack:
    server: TemporalDevServer
    client: Client
    pool: asyncpg.Pool
    workdir: Path
    engage_env: dict[str, str]
    engagements: list[Engagement] = field(default_factory=list)

    @property
    def cli_env(self) -> dict[str, str]:
        """The environment the commands of docs/operations.md expect: the address once, for every command."""
        return {**os.environ, "TEMPORAL_ADDRESS": self.server.address, "TEMPORAL_NAMESPACE": "default"}

    def temporal(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([temporal_binary(), *args], env=self.cli_env, capture_output=True, text=True,
                              timeout=60)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    server = UiDevServer(tmp_path_factory.mktemp("temporal-ui"), free_port(), free_port(), persistent=False)
    server.start()
    yield server
    server.stop()


def _scopings(suffix: str) -> list[dict[str, Any]]:
    """Three clients whose scoping leads to the three formats, so the list shows each."""
    base = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    constraints = base["constraints"]
    return [
        {**base, "id": f"acme-{suffix}", "client": "Acme Corp"},
        {**base, "id": f"globex-{suffix}", "client": "Globex",
         "objectives": [{"text": "Set the 2027 product roadmap", "kind": "planning"},
                        {"text": "Stop the churn in the mid-market", "kind": "problem_solving"}],
         "constraints": {**constraints, "max_days": 0.5, "location": "onsite"}},
        {**base, "id": f"initech-{suffix}", "client": "Initech",
         "objectives": [{"text": "Rebuild cohesion after the reorganisation", "kind": "cohesion"},
                        {"text": "Agree on a shared vision", "kind": "vision"}],
         "constraints": {**constraints, "location": "offsite"}, "topics": []},
    ]


async def engage_start(stack: Stack, scoping: dict[str, Any]) -> Engagement:
    """`engage start --json`, the real command in a subprocess, the way a consultant starts an engagement."""
    path = stack.workdir / f"{scoping['id']}.yaml"
    path.write_text(yaml.safe_dump(scoping, sort_keys=False))
    proc = await asyncio.create_subprocess_exec(
        str(ENGAGE), "start", str(path), "--json", cwd=stack.workdir, env=stack.engage_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result = StartResult.model_validate_json(out)
    description = await stack.client.get_workflow_handle(result.workflow_id).describe()
    summary = await description.static_summary()
    assert summary and summary.startswith(scoping["client"]), summary
    return Engagement(result.engagement_id, result.workflow_id, description.run_id, scoping["client"], summary)


async def wait_for_phase(client: Client, workflow_id: str, phase: Phase, run_id: str | None = None,
                         timeout: float = 30.0) -> EngagementStatus:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = await handle.query(EngagementWorkflow.status)
        if status.phase is phase:
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id} is in {status.phase if status else '?'}, not {phase.value}")


async def listed(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def wait_until_listed(client: Client, query: str, ids: set[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    while time.monotonic() < deadline:
        found = await listed(client, query)
        if ids <= found:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{query!r} lists {sorted(found)}, missing {sorted(ids - found)}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(ui_server: TemporalDevServer, settings: Settings, pool: asyncpg.Pool,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    ui_settings = settings.model_copy(update={"temporal_address": ui_server.address})
    client = await connect(ui_settings)
    async with running_worker(client, ui_settings, pool) as task_queue, Worker(
        client, task_queue=f"probe-{uuid.uuid4().hex[:6]}", workflows=[FailingActivityProbe, BrokenTaskProbe],
        activities=[probe_send_checkin], workflow_runner=UnsandboxedWorkflowRunner(),
    ) as probe_worker:
        # Only what `engage start` needs, and no .env from the repository (the command runs in a temp dir).
        engage_env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
        engage_env |= {"ENGAGE_TEMPORAL_ADDRESS": ui_server.address, "ENGAGE_TASK_QUEUE": task_queue,
                       # the log, where `engage start` checks that an id was never used
                       "ENGAGE_DATABASE_URL": settings.database_url.get_secret_value()}
        stack = Stack(ui_server, client, pool, tmp_path_factory.mktemp("engage-start"), engage_env)
        suffix = uuid.uuid4().hex[:6]
        stack.engagements = list(await asyncio.gather(*(engage_start(stack, s) for s in _scopings(suffix))))
        for e in stack.engagements:
            await wait_for_phase(client, e.workflow_id, Phase.format_choice)
        await wait_until_listed(client, PHASE_QUERY, {e.workflow_id for e in stack.engagements})

        # Probes. One never runs (nobody polls its queue): its start-time search attributes are all it is for.
        await client.start_workflow(
            "VisibilityProbe", id=AT_RISK_PROBE, task_queue=PROBE_QUEUE_UNPOLLED,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa.ENGAGEMENT_PHASE, Phase.follow_through.value),
                SearchAttributePair(sa.CLIENT_NAME, "Probe Ltd"),
                SearchAttributePair(sa.ACTIONS_AT_RISK, 2),
                SearchAttributePair(sa.NEXT_CHECKIN_AT, datetime.now(UTC)),
            ]),
            static_summary="Probe: two actions at risk, a check-in due today")
        for probe in (FAILING_ACTIVITY_PROBE, BROKEN_TASK_PROBE):
            workflow_type = "FailingActivityProbe" if probe == FAILING_ACTIVITY_PROBE else "BrokenTaskProbe"
            await client.start_workflow(workflow_type, id=probe, task_queue=probe_worker.task_queue)
        yield stack


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadlessChromium]:
    chromium = HeadlessChromium(chromium_binary(), tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


# --- the UI ---------------------------------------------------------------------------------------------------


async def test_the_list_filtered_by_phase_shows_the_three_engagements(stack: Stack, browser: HeadlessChromium,
                                                                     tmp_path: Path) -> None:
    ui = stack.server.ui_url
    # The UI's own page first (localStorage belongs to its origin), then the columns, then the filtered list.
    await asyncio.to_thread(browser.open, f"{ui}/namespaces/default/workflows", ["Workflows"])
    columns = {"default": [{"label": label, "pinned": label in ("Status", "Workflow ID")} for label in UI_COLUMNS]}
    browser.evaluate(f"localStorage.setItem({json.dumps(UI_COLUMNS_KEY)}, {json.dumps(json.dumps(columns))})")

    ids = [e.workflow_id for e in stack.engagements]
    url = f"{ui}/namespaces/default/workflows?query={quote(PHASE_QUERY)}"
    text = await asyncio.to_thread(browser.open, url, [*ids, "Globex", "Initech", "Acme Corp"])
    assert AT_RISK_PROBE not in text, "the probe is in follow_through: the filter must leave it out"
    assert FAILING_ACTIVITY_PROBE not in text
    assert "format_choice" in text

    png = browser.screenshot()
    assert png_size(png) == WINDOW
    (tmp_path / "temporal-ui.png").write_bytes(png)
    if os.environ.get("ENGAGE_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)


async def test_an_engagement_page_shows_its_summary_details_and_next_step(stack: Stack, browser: HeadlessChromium,
                                                                         tmp_path: Path) -> None:
    engagement = stack.engagements[0]
    page = (f"{stack.server.ui_url}/namespaces/default/workflows/{quote(engagement.workflow_id, safe='')}/"
            f"{engagement.run_id}")
    # The history: the summary given at start, and the summaries of the activities run so far.
    history = await asyncio.to_thread(browser.open, f"{page}/history", [
        engagement.workflow_id, engagement.summary,
        f"Record the start of the {engagement.client_name} engagement", "Enter phase format_choice"])
    assert "EngagementWorkflow" in history
    # User metadata: summary and details from `engage start`, current details from the workflow.
    await asyncio.to_thread(browser.open, f"{page}/user-metadata", [
        engagement.summary, f"Client: {engagement.client_name}", "Sponsor: Sam Okafor",
        "Consultant: Dana Reyes", "Phase: format_choice", "Next: waiting for the consultant to confirm"])
    (tmp_path / "engagement-metadata.png").write_bytes(browser.screenshot())


# --- docs/operations.md against the same server ---------------------------------------------------------------


def operations_doc_commands() -> list[str]:
    """Every one-line `temporal workflow list|count --query ...` of docs/operations.md, as written there."""
    blocks = re.findall(r"```sh\n(.*?)```", OPERATIONS_DOC.read_text(), flags=re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines
            if re.match(r"temporal workflow (list|count) --query ", line) and "|" not in line
            and not line.endswith("\\")]


def run_doc_command(stack: Stack, command: str) -> tuple[str, list[dict[str, Any]] | int]:
    """Run a command of the doc through the shell (its `$(date ...)` included); list output is read as JSON."""
    is_list = command.startswith("temporal workflow list")
    line = command.replace("temporal ", f"{temporal_binary()} ", 1) + (" --output json" if is_list else "")
    result = subprocess.run(["sh", "-c", line], env=stack.cli_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    if is_list:
        return command, json.loads(result.stdout or "[]")
    match = re.search(r"Total: (\d+)", result.stdout)
    assert match, result.stdout
    return command, int(match.group(1))


def _ids(rows: list[dict[str, Any]] | int) -> set[str]:
    assert isinstance(rows, list)
    return {row["execution"]["workflowId"] for row in rows}


def _one(results: dict[str, list[dict[str, Any]] | int], *fragments: str) -> list[dict[str, Any]] | int:
    matching = [cmd for cmd in results if all(f in cmd for f in fragments)]
    assert len(matching) == 1, f"docs/operations.md should have one query with {fragments}: {matching}"
    return results[matching[0]]


async def test_the_operations_doc_queries_find_what_they_say(stack: Stack) -> None:
    commands = operations_doc_commands()
    assert len(commands) >= 8, commands
    ours = {e.workflow_id for e in stack.engagements}
    # The failing-task probe is flagged after two failed tasks; wait for it so the last query has its answer.
    await wait_until_listed(stack.client, 'TemporalReportedProblems IN ("category=WorkflowTaskFailed")',
                            {BROKEN_TASK_PROBE}, timeout=60)
    results = dict([await asyncio.to_thread(run_doc_command, stack, command) for command in commands])

    assert ours <= _ids(_one(results, "list", 'EngagementPhase = "format_choice"'))
    assert _ids(_one(results, "ActionsAtRisk > 0")) == {AT_RISK_PROBE}
    assert _ids(_one(results, "NextCheckInAt >=", "tomorrow")) == {AT_RISK_PROBE}
    assert _ids(_one(results, "NextCheckInAt <", "1 hour ago")) == set()
    assert _ids(_one(results, "format_choice", "14 days ago")) == set(), "nothing here is two weeks old"
    assert _ids(_one(results, "TemporalReportedProblems")) == {BROKEN_TASK_PROBE}
    assert _one(results, "count", 'EngagementPhase = "scheduling"') == 0
    assert _ids(_one(results, 'ClientName = "Acme Corp"')) == {e.workflow_id for e in stack.engagements
                                                               if e.client_name == "Acme Corp"}
    # The stuck-in-phase query with a cutoff that has passed for them finds the three.
    cutoff = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stuck = (f"ExecutionStatus = 'Running' AND EngagementPhase = 'format_choice' AND StartTime < '{cutoff}'")
    assert ours <= await listed(stack.client, stuck)
    # The UI query of the doc with an offset date is valid too.
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    result = stack.temporal("workflow", "list", "--query",
                            f'ExecutionStatus = "Running" AND NextCheckInAt >= "{day}T00:00:00+01:00"')
    assert result.returncode == 0, result.stderr


async def test_a_failing_activity_shows_in_describe_as_the_doc_reads_it(stack: Stack) -> None:
    """The doc's pipeline reads `.execution.workflowId` from the list and `.pendingActivities[]` with `attempt`,
    `activityType.name` and `lastFailure.message` from describe: those fields, on a real failing activity."""
    assert 'select(.attempt > 1)' in OPERATIONS_DOC.read_text()
    deadline = time.monotonic() + 30
    pending: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = stack.temporal("workflow", "describe", "--workflow-id", FAILING_ACTIVITY_PROBE, "--output", "json")
        assert result.returncode == 0, result.stderr
        pending = json.loads(result.stdout).get("pendingActivities", [])
        if pending and pending[0].get("attempt", 0) > 1:
            break
        await asyncio.sleep(0.5)
    assert pending, "no pending activity"
    activity_info = pending[0]
    assert activity_info["attempt"] > 1
    assert activity_info["activityType"]["name"] == "probe_send_checkin"
    assert "SMTP relay refused" in activity_info["lastFailure"]["message"]
    listed_rows = stack.temporal("workflow", "list", "--query", 'ExecutionStatus = "Running"', "--output", "json")
    assert FAILING_ACTIVITY_PROBE in {r["execution"]["workflowId"] for r in json.loads(listed_rows.stdout)}


async def test_a_reset_to_the_first_workflow_task_records_nothing_twice(stack: Stack) -> None:
    """docs/operations.md says a reset re-runs activities with the same keys, so the log does not change."""
    scoping = {**_scopings(uuid.uuid4().hex[:6])[0], "client": "Umbrella Corp"}
    scoping["id"] = scoping["id"].replace("acme", "umbrella")
    engagement = await engage_start(stack, scoping)
    await wait_for_phase(stack.client, engagement.workflow_id, Phase.format_choice)
    before = await read_log(stack.pool, engagement.engagement_id)
    assert [e.event.type for e in before] == ["engagement_started", "phase_entered", "phase_entered"]

    result = stack.temporal("workflow", "reset", "--workflow-id", engagement.workflow_id,
                            "--type", "FirstWorkflowTask", "--reason", "test: re-run from the start")
    assert result.returncode == 0, result.stderr
    new_run = json.loads(stack.temporal("workflow", "describe", "--workflow-id", engagement.workflow_id,
                                        "--output", "json").stdout)["workflowExecutionInfo"]["execution"]["runId"]
    assert new_run != engagement.run_id
    await wait_for_phase(stack.client, engagement.workflow_id, Phase.format_choice, run_id=new_run)
    old = await stack.client.get_workflow_handle(engagement.workflow_id, run_id=engagement.run_id).describe()
    assert old.status is WorkflowExecutionStatus.TERMINATED

    after = await read_log(stack.pool, engagement.engagement_id)
    assert [(e.seq, e.key) for e in after] == [(e.seq, e.key) for e in before]


def test_chromium_is_required_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Chromium the browser test fails and says how to get it; it never skips."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run installs it"):
        chromium_binary()

