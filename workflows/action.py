"""ActionWorkflow: one per action under a check-in loop (workflows/checkin_loop.py), the action's own history and
status in the Temporal UI.

The loop sends the action's check-ins with the others of its engagement, and tells this workflow of each change
(a value, a snooze, a block, a miss or an escalation, the close): its history holds what changed the action,
its details show its status, its search attributes its client and whether it is at risk. It ends with the
action, returning its closed view to the engagement. The routine schedule (the next check-in, the count sent)
lives on the loop, whose details and `NextCheckInAt` show it, and in `engage status`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.schedule import local_label
    from schemas.inputs import ActionInput
    from schemas.status import ActionStatus
    from schemas.views import ActionView
    from workflows import search_attributes as sa


@workflow.defn
class ActionWorkflow:
    @workflow.init
    def __init__(self, inp: ActionInput) -> None:
        self._in = inp
        self._view = inp.action
        self._attributes: dict[str, object] = {}
        self._shown = inp.action  # the view its details show

    @workflow.signal
    def changed(self, view: ActionView) -> None:
        self._view = view

    @workflow.query
    def view(self) -> ActionView:
        return self._view

    @workflow.run
    async def run(self, inp: ActionInput) -> ActionView:
        while True:
            self._publish()
            if self._view.closed_reason is not None:
                return self._view
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(inp.model_copy(update={"action": self._view}))
            self._shown = self._view
            await workflow.wait_condition(lambda: self._view is not self._shown)

    def _publish(self) -> None:
        view = self._view
        open_ = view.closed_reason is None
        sa.upsert_changed(self._attributes, {
            sa.CLIENT_NAME.name: self._in.client,
            sa.ACTIONS_AT_RISK.name: int(view.status is ActionStatus.at_risk and open_),
        })
        state = f"closed ({view.closed_reason})" if view.closed_reason else view.status.value.replace("_", " ")
        last = (f"{view.last_value:g} {view.metric.unit}, {local_label(view.last_reported_at, view.owner.timezone)}"
                if view.last_value is not None and view.last_reported_at is not None else "none yet")
        blocked = f"\n\n**Blocked:** {view.blocked_reason}" if view.blocked_reason else ""
        workflow.set_current_details(
            f"**Status:** {state}\n\n**Last value:** {last}\n\n**Check-ins missed in a row:** {view.missed_in_row}, "
            f"escalations {view.escalations}{blocked}\n\n**Check-ins:** sent with the engagement's others by "
            f"`{self._in.checkin_loop_id}`, whose details show the next")
