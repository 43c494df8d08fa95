"""Workflows, updates, queries, signals and activities are named by reference, never by a string (issue 19).

A call such as `handle.execute_update("choose_format", ...)` type-checks whatever the update is called today;
`handle.execute_update(EngagementWorkflow.choose_format, ...)` fails mypy the day it is renamed. Every non-test
module is read with `ast` and each call of the SDK's naming methods is checked: its name argument must not be a
string. The walk and the typed calls live in adapters/engagement_client.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".venv", "tests", "var", "node_modules", "build", "dist", "__pycache__"}

# The SDK calls whose first argument (or the keyword named here) names a workflow, update, query, signal or
# activity: a string there is a name nobody checks.
NAMING_CALLS: dict[str, str | None] = {
    "start_workflow": "workflow",
    "execute_workflow": "workflow",
    "get_workflow_handle_for": "workflow",
    "start_child_workflow": "workflow",
    "execute_child_workflow": "workflow",
    "signal_with_start_workflow": "workflow",
    "execute_update": "update",
    "start_update": "update",
    "execute_update_with_start_workflow": "update",
    "start_update_with_start_workflow": "update",
    "get_update_handle_for": "update",
    "query": "query",
    "signal": "signal",
    "execute_activity": "activity",
    "start_activity": "activity",
    "execute_local_activity": "activity",
    "start_local_activity": "activity",
}
# Keywords that name a signal or an update of a call above.
NAMING_KEYWORDS = {"start_signal", "update", "query", "signal", "workflow", "activity"}

def python_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if not SKIPPED_DIRS.intersection(p.relative_to(ROOT).parts[:-1])
                  and not any(part.startswith(".") for part in p.relative_to(ROOT).parts))


def _called_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):  # `from temporalio.workflow import execute_activity`
        return func.id
    return None


def _string(node: ast.expr) -> str | None:
    """The name a string argument gives: a literal, or an f-string (shown as written)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return ast.unparse(node)
    return None


def string_calls(source: str, filename: str) -> list[tuple[str, str, str, int]]:
    """(file, call, name, line) of every naming call in `source` that names by a string."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        called = _called_name(node)
        if called not in NAMING_CALLS:
            continue
        named = [node.args[0]] if node.args and not isinstance(node.args[0], ast.Starred) else []
        named += [k.value for k in node.keywords if k.arg in NAMING_KEYWORDS]
        for arg in named:
            name = _string(arg)
            if name is not None:
                found.append((filename, called, name, node.lineno))
    return sorted(found, key=lambda f: f[3])


def all_string_calls() -> list[tuple[str, str, str, int]]:
    found = []
    for path in python_files():
        relative = path.relative_to(ROOT).as_posix()
        found += string_calls(path.read_text(encoding="utf-8"), relative)
    return found


def test_no_call_names_a_workflow_update_query_signal_or_activity_by_a_string() -> None:
    unexpected = [f"{f}:{line}: {call}({name!r}, ...)" for f, call, name, line in all_string_calls()]
    assert not unexpected, ("name it by reference (e.g. `handle.execute_update(EngagementWorkflow.choose_format, "
                            "...)`, `workflow.execute_activity_method(...)`), or go through "
                            "adapters/engagement_client.py:\n" + "\n".join(unexpected))


def test_the_check_sees_every_way_of_naming_by_a_string() -> None:
    # Each line names something by a string; the check must see all of them (and none of the typed ones).
    source = '''
async def f(client, handle, workflow, EW, parent):
    await handle.execute_update("choose_format", payload)
    await handle.start_update("schedule_session", payload, wait_for_stage=1)
    await handle.query("status")
    await handle.signal("stop")
    await parent.signal(f"action_{kind}", view)
    await client.start_workflow("EngagementWorkflow", inp, id="x", task_queue="q")
    await client.execute_workflow("EngagementWorkflow", inp, id="x", task_queue="q")
    await client.start_workflow(EW.run, inp, id="x", task_queue="q", start_signal="poke")
    client.get_workflow_handle_for("EngagementWorkflow", "engagement/x")
    await workflow.execute_activity("send_message", message, start_to_close_timeout=t)
    await execute_local_activity("append_events", batch)
    await handle.execute_update(EW.choose_format, payload, id="choose")
    await handle.query(EW.status)
    client.get_workflow_handle("engagement/x")
    await workflow.execute_activity(send_message, message, summary="Send the check-in")
'''
    found = string_calls(source, "example.py")
    assert [(call, name) for _, call, name, _ in found] == [
        ("execute_update", "choose_format"), ("start_update", "schedule_session"), ("query", "status"),
        ("signal", "stop"), ("signal", "f'action_{kind}'"), ("start_workflow", "EngagementWorkflow"),
        ("execute_workflow", "EngagementWorkflow"), ("start_workflow", "poke"),
        ("get_workflow_handle_for", "EngagementWorkflow"), ("execute_activity", "send_message"),
        ("execute_local_activity", "append_events")]


def test_the_scan_reads_the_code_that_talks_to_temporal() -> None:
    scanned = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"adapters/engagement_client.py", "adapters/web.py", "adapters/inbound.py", "cli/app.py",
            "cli/commands/planning.py", "cli/demo.py", "workflows/engagement.py", "bench/run.py",
            "worker.py"} <= scanned
    assert not any(p.startswith(("tests/", ".venv/")) for p in scanned)
