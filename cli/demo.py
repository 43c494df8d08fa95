"""`engage demo`: one complete sample engagement on the embedded stack, in about a minute and a half.

The session is set 25 seconds ahead and check-ins run every few seconds; the demo plays the consultant
(choosing, scheduling, recording outcomes) and the action owners (answering some check-ins, ignoring others),
shows the phases live, and ends with the report and the address of the Temporal UI.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time as clock
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import SecretStr
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cli.views import STATUS_STYLE
from devstack.stack import Ports
from schemas.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CADENCE = "8s"
HORIZON = "45s"
# Values the owners report at their n-th check-in; A2's owner goes silent after one answer (an escalation).
ANSWERS: dict[str, list[float]] = {"A1": [30, 80, 140, 210], "A2": [19]}


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def demo_scoping(now: datetime) -> tuple[Any, datetime]:
    """The sample scoping with today's window and a seconds cadence; the session 25 s from now (in the
    client's zone, to the second)."""
    from schemas.scoping import Scoping

    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    tz = ZoneInfo(data["timezone"])
    local_now = now.astimezone(tz)
    start = (local_now + timedelta(seconds=25)).replace(microsecond=0)
    data["id"] = f"demo-{local_now:%Y%m%d-%H%M%S}"
    data["constraints"].update(earliest=local_now.date().isoformat(),
                               latest=(local_now.date() + timedelta(days=30)).isoformat())
    data["follow_through"] = {"cadence": CADENCE, "horizon": HORIZON, "escalate_after_missed": 2}
    return Scoping.model_validate(data), start


def demo_outcomes(today: date) -> Any:
    from schemas.outcomes import Outcomes

    data = yaml.safe_load((EXAMPLES / "outcomes.yaml").read_text())
    data.pop("held_on", None)
    for n, action in enumerate(data["actions"]):
        action["due"] = (today + timedelta(days=1 + n)).isoformat()
    return Outcomes.model_validate(data)


class DemoStack:
    """The embedded stack, started in the background of this process when nothing is listening yet."""

    def __init__(self, data_dir: Path, ports: Ports) -> None:
        from devstack.stack import DevStack

        self.stack = DevStack(data_dir, ports, echo=lambda part, address: None)
        self.started = False

    def ensure(self, settings: Settings, console: Console) -> Settings:
        """The settings to reach the stack: the configured one when it answers, else the one started here."""
        if _reachable(settings.temporal_address):
            console.print(f"Using the running stack at {settings.temporal_address}")
            return settings
        with console.status("Starting the embedded stack (Temporal, Postgres, SMTP sink, CalDAV, worker)..."):
            self.stack.start()
        self.started = True
        console.print(f"[green]✓[/] embedded stack started (data in {self.stack.data_dir})")
        env = self.stack.env
        return settings.model_copy(update={
            "temporal_address": env["ENGAGE_TEMPORAL_ADDRESS"],
            "database_url": SecretStr(env["ENGAGE_DATABASE_URL"]),
            "smtp_url": SecretStr(env["ENGAGE_SMTP_URL"]),
            "caldav_url": env["ENGAGE_CALDAV_URL"],
        })

    def stop(self) -> None:
        if self.started:
            self.stack.stop()


def _view(status: Any, sent: int, log: list[str]) -> Group:
    from domain.schedule import local_label

    head = Table.grid(padding=(0, 2))
    head.add_row("[bold]engagement[/]", status.engagement_id)
    head.add_row("[bold]phase[/]", f"[bold cyan]{status.phase.value}[/]")
    fmt = status.format.value if status.format else status.recommendation.format.value + " (recommended)"
    head.add_row("[bold]format[/]", fmt)
    if status.session:
        head.add_row("[bold]session[/]", local_label(status.session.starts_at, status.session.timezone))
    head.add_row("[bold]emails sent[/]", str(sent))
    actions = Table("action", "owner", "last value", "status", "check-ins", "missed", "escalations")
    for a in status.actions:
        last = "-" if a.last_value is None else f"{a.last_value:g} {a.metric.unit}"
        style = STATUS_STYLE.get(a.status.value, "")
        actions.add_row(f"{a.action_id} {a.title}", a.owner.name, last, f"[{style}]{a.status.value}[/]",
                        str(a.checkins_sent), str(a.missed_in_row), str(a.escalations))
    return Group(head, actions if status.actions else "", *[f"[dim]{line}[/]" for line in log[-6:]])


async def play(settings: Settings, console: Console) -> str:
    """Run the sample engagement to the end; returns its id."""
    from adapters.temporal import connect, engagement_workflow_id
    from schemas.events import Phase
    from schemas.state import (
        AcknowledgePreread,
        AddPreread,
        ChooseFormat,
        EngagementInput,
        EngagementStatus,
        RecordOutcomes,
        ReportMetric,
        ScheduleSession,
    )
    from store.db import create_pool

    client = await connect(settings)
    pool = await create_pool(settings)
    now = datetime.now(ZoneInfo("UTC"))
    scoping, session_start = demo_scoping(now)
    eid = scoping.id
    handle = await client.start_workflow(
        "EngagementWorkflow", EngagementInput(engagement_id=eid, scoping=scoping), id=engagement_workflow_id(eid),
        task_queue=settings.task_queue, static_summary=f"{scoping.client}: demo engagement",
        static_details=f"**Client:** {scoping.client}\n\n**Sponsor:** {scoping.sponsor.name}\n\n"
                       f"**Consultant:** {scoping.consultant.name}")
    log: list[str] = [f"started {eid}"]

    async def update(name: str, payload: Any) -> Any:
        return await handle.execute_update(name, payload)

    status: EngagementStatus = await handle.query("status", result_type=EngagementStatus)
    await update("choose_format", ChooseFormat(format=status.recommendation.format))
    log.append(f"consultant chose {status.recommendation.format.value}")
    await update("schedule_session", ScheduleSession(on=session_start.date(), at=session_start.strftime("%H:%M:%S"),
                                                     days=status.recommendation.days))
    log.append(f"session scheduled for {session_start:%H:%M:%S} {scoping.timezone}; invitations sent")
    await update("add_preread", AddPreread(title="Market memo", url="https://example.com/memo", days_before=1))
    await update("acknowledge_preread", AcknowledgePreread(participant=scoping.participants[0].email))
    log.append(f"pre-read sent; {scoping.participants[0].name} has read it")

    answered: dict[str, int] = {}
    outcomes_recorded = False
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            status = await handle.query("status", result_type=EngagementStatus)
            sent = await pool.fetchval("SELECT count(*) FROM outbound_messages WHERE engagement_id = $1", eid)
            live.update(_view(status, sent, log))
            if status.phase in (Phase.closed, Phase.cancelled):
                break
            if status.phase is Phase.session and not outcomes_recorded:
                await update("record_outcomes", RecordOutcomes(outcomes=demo_outcomes(now.date())))
                outcomes_recorded = True
                log.append("consultant recorded the outcomes: 2 actions")
            for a in status.actions:
                values = ANSWERS.get(a.action_id, [])
                done = answered.get(a.action_id, 0)
                if a.closed_reason is None and a.checkins_sent > done and done < len(values):
                    answered[a.action_id] = done + 1
                    view = await update("report_metric", ReportMetric(action_id=a.action_id, value=values[done]))
                    log.append(f"{a.owner.name} answered check-in {done + 1}: {values[done]:g} -> "
                               f"{view['status'] if isinstance(view, dict) else view.status.value}")
            await asyncio.sleep(0.5)
    await pool.close()
    return eid


async def write_report(settings: Settings, engagement_id: str, out_dir: Path) -> tuple[str, Path]:
    from cli.report import render_html, render_markdown
    from store.db import create_pool
    from store.queries import report_data

    pool = await create_pool(settings)
    try:
        report = await report_data(pool, engagement_id)
    finally:
        await pool.close()
    assert report is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{engagement_id}.html"
    html_path.write_text(render_html(report))
    return render_markdown(report), html_path


def run_demo(settings: Settings, data_dir: Path, ports: Ports, keep_running: bool) -> None:
    console = Console()
    stack = DemoStack(data_dir, ports)
    began = clock.monotonic()
    try:
        settings = stack.ensure(settings, console)
        engagement_id = asyncio.run(play(settings, console))
        markdown, html_path = asyncio.run(write_report(settings, engagement_id, data_dir / "reports"))
        from rich.markdown import Markdown

        console.print(Markdown(markdown))
        ui = f"http://127.0.0.1:{stack.stack.ports.ui}" if stack.started else "the Temporal UI of your stack"
        console.print(f"\n[bold green]Demo finished[/] in {clock.monotonic() - began:.0f} s. "
                      f"HTML report: {html_path}\nWorkflows: {ui}/namespaces/default/workflows")
        if stack.started and keep_running:
            console.print("The stack keeps running so you can browse the UI; Ctrl-C stops it.")
            stopped = threading.Event()
            try:
                stopped.wait()
            except KeyboardInterrupt:
                pass
    finally:
        stack.stop()
