"""Planning the session: `engage choose` (the format), `engage schedule` (the date, and the invitations), and
`engage preread add|ack` (the pre-reads and who has read them)."""

from __future__ import annotations

from datetime import date

import typer

from cli.app import console, run, send_update
from cli.errors import BadInput, guarded
from schemas.names import EngagementFormat

commands = typer.Typer()
preread_app = typer.Typer(help="Pre-reads: add one, record that a participant has read it.", no_args_is_help=True)


@commands.command()
def choose(
    engagement: str = typer.Argument(..., metavar="ENG"),
    format: EngagementFormat = typer.Option(..., "--format", help="offsite, strategy_session or combined"),
    reason: str | None = typer.Option(None, "--reason", help="why, when overriding the recommendation"),
) -> None:
    """Confirm or override the recommended format."""
    from schemas.updates import ChooseFormat

    payload = guarded(lambda: ChooseFormat(format=format.value, reason=reason))
    from workflows.engagement import EngagementWorkflow

    result = run(lambda: send_update(engagement, EngagementWorkflow.choose_format, payload))
    console().print(f"{engagement}: format {result.format.value}, {result.min_days:g}-{result.max_days:g} days, "
                    f"{result.location.value}. Next: engage schedule {engagement} --on YYYY-MM-DD")


@commands.command()
def schedule(
    engagement: str = typer.Argument(..., metavar="ENG"),
    on: str = typer.Option(..., "--on", help="session date, YYYY-MM-DD, in the client's time zone"),
    at: str | None = typer.Option(None, "--at", help="start time HH:MM, local to the client (default: the "
                                                     "scoping's day_starts, 09:00)"),
    days: float | None = typer.Option(None, "--days", help="duration in days (default: the recommendation)"),
) -> None:
    """Set the session date and send the invitations."""
    from schemas.updates import ScheduleSession

    def parse() -> ScheduleSession:
        try:
            day = date.fromisoformat(on)
        except ValueError as exc:
            raise BadInput(f"--on: {on!r} is not a date YYYY-MM-DD") from exc
        return ScheduleSession(on=day, at=at, days=days)

    payload = guarded(parse)
    from workflows.engagement import EngagementWorkflow

    plan = run(lambda: send_update(engagement, EngagementWorkflow.schedule_session, payload))
    from domain.schedule import local_label

    console().print(f"{engagement}: session {local_label(plan.starts_at, plan.timezone)} for {plan.days:g} days "
                    f"(invitation sequence {plan.sequence})")


@preread_app.command("add")
def preread_add(
    engagement: str = typer.Argument(..., metavar="ENG"),
    title: str = typer.Option(..., "--title"),
    url: str = typer.Option(..., "--url"),
    days_before: int = typer.Option(7, "--days-before", help="days before the session it is sent"),
) -> None:
    """Add a pre-read, emailed to the participants N days before the session."""
    from schemas.updates import AddPreread

    payload = guarded(lambda: AddPreread(title=title, url=url, days_before=days_before))
    from workflows.engagement import EngagementWorkflow

    view = run(lambda: send_update(engagement, EngagementWorkflow.add_preread, payload))
    console().print(f"{engagement}: pre-read {view.preread_id} '{view.title}', sent {view.days_before} days before")


@preread_app.command("ack")
def preread_ack(
    engagement: str = typer.Argument(..., metavar="ENG"),
    participant: str = typer.Option(..., "--participant", help="the participant's email"),
    preread: str | None = typer.Option(None, "--preread", help="pre-read id (default: all of them)"),
) -> None:
    """Record that a participant has read a pre-read."""
    from schemas.updates import AcknowledgePreread

    payload = guarded(lambda: AcknowledgePreread(participant=participant, preread_id=preread))
    from workflows.engagement import EngagementWorkflow

    views = run(lambda: send_update(engagement, EngagementWorkflow.acknowledge_preread, payload))
    missing = {v.preread_id: v.missing for v in views}
    console().print(f"{engagement}: {participant} acknowledged; still missing: {missing}")
