"""Follow-through: `engage checkin` (a metric value), `engage snooze` and `engage block` for an action, as an owner
would from the check-in page or a reply; `engage cancel` ends the engagement and its follow-through."""

from __future__ import annotations

import typer

from cli.app import console, run, send_update
from cli.errors import guarded

commands = typer.Typer()


@commands.command()
def checkin(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action", help="action id, e.g. A1"),
    value: float = typer.Option(..., "--value", help="the metric's current value"),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Report a metric value for an action."""
    from schemas.updates import ReportMetric

    payload = guarded(lambda: ReportMetric(action_id=action, value=value, note=note))
    from workflows.engagement import EngagementWorkflow

    view = run(lambda: send_update(engagement, EngagementWorkflow.report_metric, payload))
    console().print(f"{engagement}/{view.action_id}: {view.last_value:g} {view.metric.unit} -> {view.status.value}")


@commands.command()
def snooze(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action"),
    days: int = typer.Option(..., "--days", help="postpone the next check-in by N days"),
) -> None:
    """Postpone an action's next check-in."""
    from schemas.updates import SnoozeAction

    payload = guarded(lambda: SnoozeAction(action_id=action, days=days))
    from workflows.engagement import EngagementWorkflow

    view = run(lambda: send_update(engagement, EngagementWorkflow.snooze_action, payload))
    from domain.schedule import local_label

    nxt = local_label(view.next_checkin_at, view.owner.timezone) if view.next_checkin_at else "none"
    console().print(f"{engagement}/{view.action_id}: next check-in {nxt}")


@commands.command()
def block(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action"),
    reason: str = typer.Option(..., "--reason", help="what stands in the way, in a line"),
) -> None:
    """Report an action blocked, with the reason: the consultant is told at once (as from the check-in page)."""
    from rich.text import Text

    from schemas.updates import BlockAction

    payload = guarded(lambda: BlockAction(action_id=action, reason=reason))
    from workflows.engagement import EngagementWorkflow

    view = run(lambda: send_update(engagement, EngagementWorkflow.block_action, payload))
    console().print(Text(f"{engagement}/{view.action_id}: blocked ({view.blocked_reason}); the consultant is told"))


@commands.command()
def cancel(
    engagement: str = typer.Argument(..., metavar="ENG"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Cancel an engagement: follow-through stops, invitations are withdrawn."""
    from schemas.updates import CancelEngagement

    payload = guarded(lambda: CancelEngagement(reason=reason))
    from workflows.engagement import EngagementWorkflow

    run(lambda: send_update(engagement, EngagementWorkflow.cancel, payload))
    console().print(f"{engagement}: cancelled")
