"""Every recorded history replays against the current workflow code; an unguarded change is caught.

Histories come from real runs of these tests: `ENGAGE_RECORD_HISTORIES=1 pytest tests/test_lifecycle.py
tests/test_history_bounds.py` rewrites tests/histories/. A change to a workflow that alters its commands must
be wrapped in `workflow.patched(...)`, or this test fails. Histories of older code are kept, renamed, so the
old paths keep replaying: `v1_*` from before the `parent-reads-child-results` patch, `v2_*` from before
`checkin-in-one-activity`, `v3_*` from before `answer-verdicts` (an answer waits for its own verdict), `v4_*`
from before `calendars-stay-right` (issue 17: the consultant's copy, RSVP reminders, morning pre-read reminders,
every calendar entry withdrawn on a cancel), `v5_*` from before `clock-from-history`, `v6_*` from before
`session-recorded-first`, `v7_*` from before `parent-hears-what-matters` (issue 18: a routine check-in no longer
wakes the engagement), `v8_*` from before `checkins-in-one-loop` (issue 18: one check-in loop per engagement),
`v9_*` from before `children-start-together` (the actions' workflows and the loop started in one workflow task).
tests/test_takeover.py adds the histories of an engagement begun by a worker of older code and finished by the
current one (`takeover_*`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from schemas.settings import Settings
from tests.lifecycle import load_history
from tests.unpatched_workflow import EngagementWorkflowChangedWithoutPatch
from worker import worker_options, workflow_runner
from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_were_recorded() -> None:
    names = {p.name for p in HISTORIES}
    assert "lifecycle_closed.json" in names
    assert "lifecycle_cancelled.json" in names
    assert "year_weekly.checkins.run2.json" in names, "a continue-as-new run of a check-in loop"
    assert "v1_lifecycle_closed.json" in names, "a run from before the parent-reads-child-results patch"
    assert "v2_year_weekly.A1.run2.json" in names, "a run from before the checkin-in-one-activity patch"
    assert "v3_lifecycle_closed.json" in names, "a run from before the answer-verdicts patch"
    assert "v4_lifecycle_cancelled.json" in names, "a run from before the calendars-stay-right patch"
    assert "v5_lifecycle_closed.A1.run1.json" in names, "a run from before the clock-from-history patch"
    assert "v6_lifecycle_closed.json" in names, "a run from before the session-recorded-first patch"
    assert "v7_lifecycle_closed.A1.run1.json" in names, "a run from before the parent-hears-what-matters patch"
    assert "v8_lifecycle_closed.A1.run1.json" in names, "a run from before the checkins-in-one-loop patch"
    assert "lifecycle_closed.checkins.run1.json" in names, "an engagement's check-in loop"
    assert "v9_lifecycle_closed.checkins.run1.json" in names, "a run from before the children-start-together patch"


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "unsandboxed"])
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path, sandbox: bool) -> None:
    # ENGAGE_WORKFLOW_SANDBOX=false runs the same workflow code outside the sandbox: it must decide the same.
    replayer = Replayer(workflows=WORKFLOWS,
                        data_converter=pydantic_data_converter, workflow_runner=workflow_runner(sandbox))
    result = await replayer.replay_workflow(load_history(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_the_sandbox_setting_chooses_the_workflow_runner() -> None:
    sandboxed = worker_options(Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(sandboxed["workflow_runner"], SandboxedWorkflowRunner)
    unsandboxed = worker_options(Settings(_env_file=None, workflow_sandbox=False))  # type: ignore[call-arg]
    assert isinstance(unsandboxed["workflow_runner"], UnsandboxedWorkflowRunner)


async def test_a_change_without_patched_fails_replay() -> None:
    replayer = Replayer(workflows=[EngagementWorkflowChangedWithoutPatch, *WORKFLOWS[1:]],
                        data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load_history(HISTORIES[0].parent / "lifecycle_closed.json"),
                                            raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


@pytest.mark.parametrize("name", ["lifecycle_closed.checkins.run1.json", "v8_lifecycle_closed.A1.run1.json"],
                         ids=["check-in loop", "follow-through"])
async def test_the_sandbox_rebuilds_a_loop_without_running_the_engagement_module_again(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    # The sandbox imports a workflow's module afresh for every instance it builds: in a burst of check-ins,
    # for every loop it rebuilds. The engagement's module, which the loop and the follow-through reference for
    # their signal, is passed through instead: running it again was a third of a cold loop task's cost
    # (bench/replay.py). The SDK's import trace says which modules a new instance imported and which it took
    # from the worker's.
    from temporalio.worker.workflow_sandbox import _importer

    history = load_history(HISTORIES[0].parent / name)
    loops_only = [w for w in WORKFLOWS if w.__name__ != "EngagementWorkflow"]  # none of them built here
    replayer = Replayer(workflows=loops_only, data_converter=pydantic_data_converter,
                        workflow_runner=SandboxedWorkflowRunner())
    caplog.set_level("DEBUG", logger=_importer.logger.name)
    _importer.LOG_TRACE = True
    try:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    finally:
        _importer.LOG_TRACE = False
    assert result.replay_failure is None
    trace = [r.getMessage().strip() for r in caplog.records if r.name == _importer.logger.name]
    imports = [i for i, line in enumerate(trace) if line.startswith("Importing workflows.engagement ")]
    assert imports, "the loop's module refers to the engagement's"
    for i in imports:
        assert trace[i + 1] == "Passing module workflows.engagement through from host", trace[i:i + 3]
