"""CheckInLoopWorkflow: one per engagement (since CHECKINS_IN_ONE_LOOP), the check-ins of all its actions.

Each action is a track: the follow-through's own rules (workflows/follow_through.py `FollowThrough`), run as a
coroutine of this workflow. What the tracks record and send at the same moment goes out together, one activity
for the round's events and one for its messages, after one timer for the earliest deadline of every track: five
check-ins due at once cost one workflow task and one activity, not five of each (docs/BENCHMARKS.md, "Session
10": a burst of check-ins is mostly workflow tasks). Each action keeps a workflow of its own
(workflows/action.py), told of what changes it (a value, a snooze, a block, a miss, the close); the engagement
hears what matters, as before. Continue-as-new carries every open track when all of them are waiting.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from domain.schedule import local_label
    from schemas import events as ev
    from schemas.inputs import CheckInLoopInput, FollowThroughCarry, FollowThroughInput
    from schemas.messages import OutboundMessage, SendResult
    from schemas.updates import BlockAction, ReportMetric, SnoozeAction
    from schemas.views import ActionView
    from workflows import search_attributes as sa
    from workflows.action import ActionWorkflow
    from workflows.follow_through import FollowThrough
    from workflows.steps import record, send_many, with_events


class Round:
    """What the tracks record and send in one moment of the workflow, gathered into one activity of each kind.

    A track's record or send waits for the round's flush, which runs once every track that could run has run
    (a condition that is true at once is checked only when nothing else is ready), so every track due at the
    same instant is in it. The order is the workflow's own, so a replay gathers the same rounds."""

    def __init__(self, engagement_id: str) -> None:
        self._engagement_id = engagement_id
        self._records: list[tuple[tuple[tuple[str, ev.Event], ...], str, asyncio.Future[datetime | None]]] = []
        self._sends: list[tuple[OutboundMessage, asyncio.Future[SendResult]]] = []
        self._flush_task: asyncio.Task[None] | None = None

    async def record(self, items: tuple[tuple[str, ev.Event], ...], summary: str) -> datetime | None:
        done: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        self._records.append((items, summary, done))
        self._kick()
        return await done

    async def send(self, message: OutboundMessage) -> SendResult:
        done: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._sends.append((message, done))
        self._kick()
        return await done

    def _kick(self) -> None:
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await workflow.wait_condition(lambda: True)  # every ready track has queued what it records and sends
        records, sends = self._records, self._sends
        self._records, self._sends, self._flush_task = [], [], None
        await asyncio.gather(self._append(records), self._send(sends))

    async def _append(self, records: list[tuple[tuple[tuple[str, ev.Event], ...], str,
                                                asyncio.Future[datetime | None]]]) -> None:
        if not records:
            return
        try:
            items = [item for r in records for item in r[0]]
            at = await record(self._engagement_id, *items, summary=_joined([r[1] for r in records]))
        except BaseException as exc:  # noqa: BLE001 - each track waiting on the round hears it
            for _, _, done in records:
                done.set_exception(exc)
            return
        for _, _, done in records:
            done.set_result(at)

    async def _send(self, sends: list[tuple[OutboundMessage, asyncio.Future[SendResult]]]) -> None:
        if not sends:
            return
        try:
            results = await send_many([m for m, _ in sends], _joined([m.summary or m.key for m, _ in sends]))
        except BaseException as exc:  # noqa: BLE001
            for _, done in sends:
                done.set_exception(exc)
            return
        for (_, done), result in zip(sends, results, strict=True):
            done.set_result(result)


def _joined(summaries: list[str]) -> str:
    if len(summaries) == 1:
        return summaries[0]
    return f"{len(summaries)} at once: " + "; ".join(summaries)


class Track(FollowThrough):
    """One action's follow-through inside the loop: its rules unchanged; its records and sends go in the loop's
    round, its wait is for the loop's clock, and what changes it goes to its own workflow (and, what matters,
    to the engagement)."""

    def __init__(self, inp: FollowThroughInput, loop: CheckInLoopWorkflow) -> None:
        super().__init__(inp)
        self._loop = loop
        self._by_history = True  # the loop was born after CLOCK_FROM_HISTORY
        self.deadline: datetime | None = None  # while it waits: until when
        self.done = False

    @property
    def action_id(self) -> str:
        return self._view.action_id

    @property
    def view_now(self) -> ActionView:
        return self._view

    def waiting(self) -> bool:
        """Waiting, with nothing to wake it: no input and its deadline not reached."""
        return self.done or (self.deadline is not None and not self._has_inputs()
                             and self._loop.clock < self.deadline)

    def carry(self) -> FollowThroughInput:
        return self._in.model_copy(update={"carry": FollowThroughCarry(
            view=self._view, pending_number=self._pending, answered=self._answered, reminder_at=self._reminder_at,
            reminded=self._reminded)})

    async def run(self) -> None:
        view = await self.follow()
        await self._loop.tell(view, parent=False)  # its own workflow closes with it
        self.done = True

    # --- how a track acts: through the loop ------------------------------------------------------------------

    async def _record(self, *items: tuple[str, ev.Event], summary: str | None = None) -> None:
        text = summary or "Record " + ", ".join(e.type.replace("_", " ") for _, e in items)
        self._saw(await self._loop.round.record(items, text))

    async def _send(self, message: OutboundMessage, *items: tuple[str, ev.Event]) -> None:
        result = await self._loop.round.send(with_events(message, items))
        if result.refused is not None:
            workflow.logger.error("message refused for good", extra={"key": message.key, "why": result.refused})
        self._saw(result.at)

    async def _wait_until(self, deadline: datetime) -> None:
        self.deadline = deadline
        await workflow.wait_condition(lambda: self._has_inputs() or self._loop.clock >= deadline)
        self.deadline = None
        if self._loop.clock >= deadline:
            self._reached = deadline
            self._saw(deadline)

    def _publish(self) -> None:
        """The loop shows the next check-in of all its tracks; each action's own workflow its status."""

    async def _tell_parent(self) -> None:
        await self._loop.tell(self._view, parent=True)

    async def _checkin_due(self) -> None:
        missed = self._pending is not None and not self._answered
        await super()._checkin_due()
        if missed:  # a miss (and maybe an escalation) changes the action: its own workflow hears of it
            await self._loop.tell(self._view, parent=False)

    async def _continue_as_new(self) -> None:
        self._loop.new_run_wanted = True  # the loop hands over once every track waits

    def _checkin_in_one_activity(self) -> bool:
        return True


@workflow.defn
class CheckInLoopWorkflow:
    @workflow.init
    def __init__(self, inp: CheckInLoopInput) -> None:
        self._in = inp
        # The latest deadline the loop's timer has reached: a track waiting for an earlier one wakes.
        self.clock: datetime = workflow.info().workflow_start_time
        self.round = Round(inp.engagement_id)
        self.new_run_wanted = False
        self._tracks = [Track(f, self) for f in inp.follow_throughs]
        self._by_id = {t.action_id: t for t in self._tracks}
        self._failure: BaseException | None = None
        self._attributes: dict[str, object] = {}

    # --- inputs from the engagement (which validated them) ------------------------------------------------

    @workflow.signal
    def report(self, value: ReportMetric) -> None:
        self._take(value)

    @workflow.signal
    def snooze(self, request: SnoozeAction) -> None:
        self._take(request)

    @workflow.signal
    def block(self, request: BlockAction) -> None:
        self._take(request)

    @workflow.signal
    def stop(self) -> None:
        for track in self._tracks:
            track.stop()

    @workflow.query
    def views(self) -> list[ActionView]:
        return [t.view_now for t in self._tracks]

    def _take(self, request: ReportMetric | SnoozeAction | BlockAction) -> None:
        # An input for an action closed meanwhile goes nowhere: the engagement, which waits for its verdict or
        # the action's close, answers that it closed first.
        track = self._by_id.get(request.action_id)
        if track is not None and not track.done:
            track.take(request)

    # --- the run ----------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CheckInLoopInput) -> list[ActionView]:
        tasks = [asyncio.create_task(self._follow(t)) for t in self._tracks]
        while True:
            await workflow.wait_condition(self._quiet)
            if self._failure is not None:
                raise self._failure
            self._publish()
            if all(t.done for t in self._tracks):
                break
            if self.new_run_wanted or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._quiet():
                    self._continue_as_new()
            deadline = min(t.deadline for t in self._tracks if not t.done and t.deadline is not None)
            # Always a timer, if only a short one: its firing is what proves the deadline has passed
            # (FollowThrough `_now`).
            timeout = max(deadline - workflow.now(), timedelta(milliseconds=1))
            try:
                await workflow.wait_condition(lambda: not self._quiet(), timeout=timeout,
                                              timeout_summary=f"Wait for the next check-in, {self._label(deadline)}")
            except TimeoutError:
                self.clock = max(self.clock, deadline)
        await asyncio.gather(*tasks)
        return self.views()

    async def _follow(self, track: Track) -> None:
        try:
            await track.run()
        except BaseException as exc:  # the loop's run raises it: a track never fails unseen
            self._failure = exc
            raise

    def _quiet(self) -> bool:
        """Nothing to do before the next deadline: every track waits (or has closed), or one has failed."""
        return self._failure is not None or all(t.waiting() for t in self._tracks)

    def _label(self, at: datetime) -> str:
        due = [t for t in self._tracks if t.deadline == at]
        zone = due[0].view_now.owner.timezone if due else "UTC"
        return local_label(at, zone)

    async def tell(self, view: ActionView, *, parent: bool) -> None:
        """The action's own workflow hears every change of `view`; the engagement what matters (`parent`)."""
        if parent:
            engagement_workflow = engagement.EngagementWorkflow
            await workflow.get_external_workflow_handle_for(
                engagement_workflow.run, self._in.parent_workflow_id).signal(engagement_workflow.action_changed, view)
        own = workflow.get_external_workflow_handle_for(ActionWorkflow.run,
                                                        f"{self._in.parent_workflow_id}/{view.action_id}")
        try:
            await own.signal(ActionWorkflow.changed, view)
        except FailureError as exc:  # ended by hand (terminated in the UI): it only shows the action
            workflow.logger.warning("the action's own workflow is gone", extra={"action_id": view.action_id,
                                                                                "error": str(exc)})

    def _publish(self) -> None:
        """The engagement's next check-in (`NextCheckInAt < "..."` finds the loops with a check-in due), in
        its search attributes, and the open actions in its details. An unchanged attribute is not upserted."""
        open_ = [t.view_now for t in self._tracks if not t.done and t.view_now.closed_reason is None]
        upcoming = [v.next_checkin_at for v in open_ if v.next_checkin_at is not None]
        sa.upsert_changed(self._attributes, {
            sa.CLIENT_NAME.name: self._in.client,
            sa.NEXT_CHECKIN_AT.name: min(upcoming) if upcoming else None,
        })
        lines = [f"**{len(open_)} of {len(self._tracks)} actions open**"]
        for v in open_:
            nxt = local_label(v.next_checkin_at, v.owner.timezone) if v.next_checkin_at else "none"
            lines.append(f"- {v.action_id} ({v.owner.name}): {v.status.value.replace('_', ' ')}, "
                         f"{v.checkins_sent} check-ins sent, next {nxt}")
        workflow.set_current_details("\n".join(lines))

    def _continue_as_new(self) -> None:
        carried = [t.carry() for t in self._tracks if not t.done and t.view_now.closed_reason is None]
        workflow.continue_as_new(self._in.model_copy(update={"follow_throughs": carried}))


# The engagement, by reference for its signal. Imported last, as a module: workflows/engagement.py imports this
# module for its loop, and whichever of the two loads first, the other is then only partly initialised. Passed
# through, as every other module here: the sandbox imports the loop's module afresh for every loop it rebuilds
# (every cold task of a burst), and re-running the engagement's 1,000 lines with it was a third of that task's
# cost (`bench/replay.py`, docs/BENCHMARKS.md "What a cold workflow task costs").
with workflow.unsafe.imports_passed_through():
    import workflows.engagement as engagement  # noqa: E402
