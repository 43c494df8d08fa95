"""Hypothesis against every input path a person (or a bug in a client) can reach.

The scoping and outcomes schemas: any JSON-ish value, and the example files with fields dropped, added or
replaced by values of another type, is either a valid model or a pydantic `ValidationError` whose first
problem `one_line` renders as one line naming the field. Never another exception type.

Update payloads: one engagement runs on the time-skipping server with the real worker, store and SMTP sink.
Hypothesis sends it random and mutated payloads for every update (`cancel` aside: it would end the run),
first while it waits for its session (pre_reads), then in follow-through. Each update either succeeds or is
rejected by its validator with a one-line message (an `ApplicationError` of type `ValidationError`, the only
kind `_reject` raises: an `OverflowError` or `KeyError` escaping a validator would be a rejection too, but
without a message a consultant can act on). Afterwards the engagement is still running, no workflow task
ever failed (parent or follow-throughs), and it closes normally at its horizon.

Hypothesis and the event loop: the worker lives on pytest-asyncio's session loop, so the update test must
not block it. The test does its async setup, then runs a synchronous `@given` function in a thread
(`asyncio.to_thread`); each example hands its update to the loop with `run_coroutine_threadsafe` and waits
for the answer. Hypothesis keeps its full machinery (generation, shrinking, a reproducible failure report)
and the workflow sees one update at a time, in order. `database=None`: a stored example replayed against a
new engagement in another state would mean nothing.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.api.enums.v1.workflow_pb2 import (
    WORKFLOW_EXECUTION_STATUS_COMPLETED,
    WORKFLOW_EXECUTION_STATUS_RUNNING,
)
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from schemas.common import one_line
from schemas.events import Phase
from schemas.outcomes import Outcomes
from schemas.scoping import Scoping
from schemas.settings import Settings
from schemas.updates import AddPreread, ChooseFormat, RecordOutcomes, ScheduleSession
from schemas.views import EngagementStatus
from tests.conftest import unique_id
from tests.lifecycle import (
    action,
    child_histories,
    execution_status,
    outcomes,
    running_worker,
    scoping,
    start,
    until,
)
from workflows.engagement import EngagementWorkflow as EW

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SCHEMA_EXAMPLES = 400  # per schema
PRE_SESSION_UPDATES = 250
FOLLOW_THROUGH_UPDATES = 450


def _json_example(name: str) -> dict[str, Any]:
    """An example file as JSON would carry it (dates as strings)."""
    return json.loads(json.dumps(yaml.safe_load((EXAMPLES / name).read_text()), default=str))


SCOPING_EXAMPLE = _json_example("scoping.yaml")
OUTCOMES_EXAMPLE = _json_example("outcomes.yaml")


# --- strategies ------------------------------------------------------------------------------------------

def _field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every field name of a model and of the models inside it: random dicts then hit real fields often."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for arg in _types_in(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg, seen)
    return names


def _types_in(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", ())
    return [annotation, *[t for a in args for t in _types_in(a)]]


FIELD_NAMES = sorted(_field_names(Scoping) | _field_names(Outcomes) | _field_names(RecordOutcomes)
                     | {"on", "at", "days", "format", "reason", "title", "url", "days_before", "participant",
                        "preread_id", "action_id", "value", "note", "source"})

# Values at the edges of the rules and of the types: lengths, control characters, dates, durations, numbers.
EDGE_STRINGS = ["", " ", "\t", "x" * 501, "y" * 4001, "line\nbreak", "cr\rhere", "nul\x00", "del\x7f", "\u2028",
                "2027-02-30", "2027-13-01", "9999-12-31", "0001-01-01", "24:00", "23:59:59", "9:5", "-1d", "0d",
                "1e309d", "99999999999d", "1.5h", "NaN", "inf", "Europe/Berlin ", "Mars/Olympus_Mons",
                "ANA@ACME.EXAMPLE", "ana@acme", "a@b.c", "https://", "javascript:alert(1)", "A1", "A2", "A3",
                "P1", "P9", "combined", "offsite", "strategy_session", "decrease", "increase", "email", "cli",
                "ana@acme.example", "ben@acme.example", "chloe@acme.example", "😀" * 10, "'; DROP TABLE events;--"]
EDGE_NUMBERS: list[Any] = [0, -1, 1, 7, 14, 14.0001, 0.124, 0.125, 91, 365, 366, 100_000, 100_001, 2**31, 2**63,
                           -(2**63), 10**30, 1e308, -1e308, 5e-324, -0.0, math.nan, math.inf, -math.inf, True, False]

keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=12)
leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
          | st.sampled_from(EDGE_STRINGS) | st.sampled_from(EDGE_NUMBERS))
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=25,
)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) of a JSON tree."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    found = []
    for key, child in items:
        found.append((value, key))
        found.extend(_slots(child))
    return found


def _dicts(value: Any) -> list[dict[str, Any]]:
    found = [value] if isinstance(value, dict) else []
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        found.extend(_dicts(child))
    return found


def _other_type(value: Any) -> st.SearchStrategy[Any]:
    """A value of another JSON type than `value`."""
    kinds: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(), "bool": st.booleans(), "int": st.integers(), "float": st.floats(),
        "str": st.text(max_size=10), "list": st.lists(leaves, max_size=3),
        "dict": st.dictionaries(keys, leaves, max_size=3),
    }
    own = ("null" if value is None else "bool" if isinstance(value, bool) else "int" if isinstance(value, int)
           else "float" if isinstance(value, float) else "str" if isinstance(value, str)
           else "list" if isinstance(value, list) else "dict")
    return st.one_of(*(s for k, s in kinds.items() if k != own))


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """`base` with one to three changes: a field dropped, an unknown field added, a value replaced by a random
    value, by a value of another type, or by an edge value."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(data)
        op = draw(st.sampled_from(["drop", "add", "replace", "retype", "edge"] if slots else ["add"]))
        if op == "add":
            dicts = _dicts(data)
            if not dicts:
                return draw(json_values)
            target = draw(st.sampled_from(dicts))
            target[draw(keys)] = draw(json_values)
            continue
        container, key = draw(st.sampled_from(slots))
        if op == "drop":
            del container[key]
        elif op == "replace":
            container[key] = draw(json_values)
        elif op == "retype":
            container[key] = draw(_other_type(container[key]))
        else:
            container[key] = draw(st.sampled_from(EDGE_STRINGS) | st.sampled_from(EDGE_NUMBERS))
    return data


def documents(example: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        mutated(example),
        mutated(example),  # twice: most of the interest is near a valid document
        json_values,
        st.dictionaries(keys, json_values, max_size=12),
    )


# --- the one-line, field-naming rejection ---------------------------------------------------------------

def assert_one_line(message: str) -> None:
    assert message.strip(), "an empty rejection"
    assert len(message.splitlines()) == 1, f"not one line: {message!r}"


def check_model(model: type[BaseModel], data: Any) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        line = one_line(exc)
        assert_one_line(line)
        where, sep, message = line.partition(": ")
        assert sep and message.strip(), line
        loc = exc.errors()[0]["loc"]
        if loc:
            # The field named is one of the model's, or the unknown one the document brought.
            assert loc[0] in model.model_fields or (isinstance(data, dict) and loc[0] in data), line
        else:
            # A whole-document problem (not a mapping, duplicate participants, ...): "input: ...".
            assert where == "input", line


@settings(max_examples=SCHEMA_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(SCOPING_EXAMPLE))
def test_any_scoping_document_is_a_model_or_a_one_line_error(data: Any) -> None:
    check_model(Scoping, data)


@settings(max_examples=SCHEMA_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(OUTCOMES_EXAMPLE))
def test_any_outcomes_document_is_a_model_or_a_one_line_error(data: Any) -> None:
    check_model(Outcomes, data)


def test_the_examples_themselves_are_valid() -> None:
    """The mutations start from valid documents, so a rejection is the mutation's doing."""
    Scoping.model_validate(SCOPING_EXAMPLE)
    Outcomes.model_validate(OUTCOMES_EXAMPLE)


# --- update payloads against a running engagement ----------------------------------------------------------

KEEPER = "keeper_7f3c"  # an action no generated payload names: the engagement stays in follow-through


def _outcomes_payload() -> dict[str, Any]:
    return {"outcomes": OUTCOMES_EXAMPLE | {"held_on": None}}


VALID_PAYLOADS: dict[str, list[dict[str, Any]]] = {
    "choose_format": [{"format": "combined", "reason": "two days are what they have"}, {"format": "offsite"}],
    "schedule_session": [{"on": "2027-02-11", "at": "09:00", "days": 2}, {"on": "2027-03-01", "at": "10:30"}],
    "add_preread": [{"title": "Market memo", "url": "https://x.example/memo", "days_before": 7},
                    {"title": "Numbers", "url": "http://x.example/n"}],
    "acknowledge_preread": [{"participant": "ben@acme.example", "preread_id": "P1"},
                            {"participant": "chloe@acme.example"}],
    "record_outcomes": [_outcomes_payload()],
    "report_metric": [{"action_id": "A1", "value": 40, "note": "first month", "source": "cli"},
                      {"action_id": "A2", "value": 18}],
    "snooze_action": [{"action_id": "A1", "days": 7}, {"action_id": "A2", "days": 1}],
}


PARTICIPANTS = ["ana@acme.example", "ben@acme.example", "chloe@acme.example", " BEN@Acme.Example ",
                "dana@consultancy.example", "mallory@evil.example"]
ACTION_IDS = ["A1", "A2", " A1 ", "A3", "a1"]  # whitespace is stripped; ids are case-sensitive
PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40)
TITLES = st.sampled_from(["Market memo", "Q3 numbers", "Chloé's deck"]) | PRINTABLE | st.text(max_size=30)

# Payloads of the right shape with values from around the valid range: they reach the validators' own rules
# (window, phase, known action, closed action) and, when valid, the handlers.
PLAUSIBLE: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "choose_format": st.fixed_dictionaries(
        {"format": st.sampled_from(["combined", "offsite", "strategy_session", "retreat"])},
        optional={"reason": st.text(max_size=20)}),
    "schedule_session": st.fixed_dictionaries(
        {"on": st.dates(date(2027, 1, 20), date(2027, 3, 20)).map(str)},
        optional={"at": st.times().map(lambda t: t.strftime("%H:%M")),
                  "days": st.sampled_from([0.125, 0.5, 1, 1.5, 2, 2.5, 3, 14, 15])}),
    "add_preread": st.fixed_dictionaries(
        {"title": TITLES,
         "url": st.sampled_from(["https://x.example/a", "http://x.example/b", "ftp://x.example", "https://a b"])},
        optional={"days_before": st.integers(-2, 95)}),
    "acknowledge_preread": st.fixed_dictionaries(
        {"participant": st.sampled_from(PARTICIPANTS)},
        optional={"preread_id": st.none() | st.sampled_from(["P1", "P2", "P3", "P21", ""])}),
    "record_outcomes": st.just(_outcomes_payload()),
    "report_metric": st.fixed_dictionaries(
        {"action_id": st.sampled_from(ACTION_IDS),
         "value": st.floats(-1e6, 1e6) | st.integers(-10**6, 10**6)},
        optional={"note": PRINTABLE | st.text(max_size=40), "source": st.sampled_from(["cli", "email", "sms"])}),
    "snooze_action": st.fixed_dictionaries(
        {"action_id": st.sampled_from(ACTION_IDS), "days": st.integers(-1, 370)}),
}

updates = st.sampled_from(sorted(VALID_PAYLOADS)).flatmap(
    lambda name: st.tuples(st.just(name), st.one_of(
        st.sampled_from(VALID_PAYLOADS[name]),
        PLAUSIBLE[name],
        PLAUSIBLE[name],
        st.sampled_from(VALID_PAYLOADS[name]).flatmap(mutated),
        st.sampled_from(VALID_PAYLOADS[name]).flatmap(mutated),
        json_values,
    )))


async def _send(handle: WorkflowHandle, name: str, payload: Any) -> ApplicationError | None:
    """None when the update succeeded, its failure when the workflow rejected it; anything else raises."""
    try:
        await handle.execute_update(name, payload, rpc_timeout=timedelta(seconds=30))
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        assert isinstance(cause, ApplicationError), f"{name} {payload!r}: {type(cause).__name__}: {cause}"
        return cause
    return None


def fuzz_updates(loop: asyncio.AbstractEventLoop, handle: WorkflowHandle, examples: int,
                 tally: Counter[tuple[str, str]]) -> Callable[[], None]:
    """A synchronous hypothesis test (run it in a thread) sending `examples` updates through `loop`."""

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(updates)
    @example(("schedule_session", {"on": "0001-01-01", "at": "00:00", "days": 1}))  # before year 1 in UTC
    @example(("schedule_session", {"on": "9999-12-31", "at": "23:00", "days": 3}))  # ends after year 9999
    @example(("acknowledge_preread", {"participant": "ana@acme.example", "preread_id": "P1"}))
    def fuzz(update: tuple[str, Any]) -> None:
        name, payload = update
        future = asyncio.run_coroutine_threadsafe(_send(handle, name, payload), loop)
        failure = future.result(timeout=60)
        if failure is None:
            tally[name, "ok"] += 1
            return
        tally[name, "rejected"] += 1
        assert failure.type == "ValidationError", f"{name} {payload!r}: {failure.type}: {failure.message}"
        assert_one_line(failure.message)

    return fuzz


async def follow_through_started(handle: WorkflowHandle, timeout: float = 30) -> None:
    """Until every action's follow-through has planned its first check-in (the children are running)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status: EngagementStatus = await handle.query(EW.status)
        if status.phase is Phase.follow_through and all(a.next_checkin_at for a in status.actions):
            return
        assert asyncio.get_running_loop().time() < deadline, f"not in follow-through: {status.phase}"
        await asyncio.sleep(0.05)


async def assert_no_workflow_task_failed(handle: WorkflowHandle) -> None:
    parent = await handle.fetch_history()
    histories = [(handle.id, parent)]
    for child_id, runs in (await child_histories(handle._client, parent)).items():
        histories.extend((child_id, run) for run in runs)
    for workflow_id, history in histories:
        failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        assert not failed, f"{workflow_id}: {failed[0]}"


async def test_update_payloads_never_break_a_running_engagement(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    loop = asyncio.get_running_loop()
    eid = unique_id("fuzz")
    tally: Counter[tuple[str, str]] = Counter()
    async with running_worker(env.client, settings, pool) as tq:
        handle = await start(env.client, tq, scoping(eid, cadence="7d", horizon="30d"))
        await handle.execute_update(EW.choose_format, ChooseFormat(format="combined"))
        await handle.execute_update(EW.schedule_session, ScheduleSession(on=date(2027, 2, 11), at="09:00"))
        await handle.execute_update(EW.add_preread, AddPreread(title="Memo", url="https://x.example/m"))

        # Waiting for the session: choose, (re)schedule, pre-reads and acknowledgements all do real work.
        await asyncio.to_thread(fuzz_updates(loop, handle, PRE_SESSION_UPDATES, tally))
        status: EngagementStatus = await handle.query(EW.status)
        assert status.phase is Phase.pre_reads and status.session is not None

        await env.sleep(until(await env.get_current_time(), status.session.starts_at + timedelta(hours=1)))
        await handle.execute_update(EW.record_outcomes, RecordOutcomes(outcomes=outcomes(
            # Targets beyond the plausible values: actions close only when an edge value reaches them.
            action("A1", "Ben Wu", "ben@acme.example", "Asia/Tokyo", date(2027, 5, 31), 0, 1e7),
            action("A2", "Ana Lima", "ana@acme.example", "America/Sao_Paulo", date(2027, 4, 30), 21, -1e7,
                   "decrease"),
            action(KEEPER, "Chloé Martin", "chloe@acme.example", "Europe/Berlin", date(2027, 5, 10), 0, 10),
        )))
        await follow_through_started(handle)

        # Follow-through: values and snoozes go to the children; everything else is refused by phase.
        await asyncio.to_thread(fuzz_updates(loop, handle, FOLLOW_THROUGH_UPDATES, tally))

        assert await execution_status(env, handle.id) == WORKFLOW_EXECUTION_STATUS_RUNNING
        assert (await handle.query(EW.status)).phase is Phase.follow_through
        await assert_no_workflow_task_failed(handle)

        # Driven to the end: the horizon closes every action and the engagement.
        final: EngagementStatus = await asyncio.wait_for(handle.result(), 120)
        assert final.phase is Phase.closed
        assert all(a.closed_reason is not None for a in final.actions)
        assert await execution_status(env, handle.id) == WORKFLOW_EXECUTION_STATUS_COMPLETED
        await assert_no_workflow_task_failed(handle)

    print(f"update fuzz: {sum(tally.values())} updates: {dict(sorted(tally.items()))}")
    assert sum(tally.values()) >= PRE_SESSION_UPDATES + FOLLOW_THROUGH_UPDATES
    # Both paths were exercised, for every update: successes and rejections.
    assert {name for name, _ in tally} == set(VALID_PAYLOADS)
    assert tally["report_metric", "ok"] and tally["snooze_action", "ok"] and tally["schedule_session", "ok"]
