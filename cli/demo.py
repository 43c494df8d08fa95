"""`engage demo`: one complete sample engagement on the embedded stack, in about a minute and a half.

The session is set 25 seconds ahead and check-ins run every few seconds; the demo plays the consultant
(choosing, scheduling, recording outcomes) and the action owners, as owners do: A1's owner answers each
check-in on the check-in page (the link in the mail), A2's owner replies to the first check-in mail and then goes
silent (and is escalated). It shows the phases live and ends with both answer mails, the report and the address
of the Temporal UI.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
import time as clock
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import SecretStr
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cli.views import STATUS_STYLE, styled, terminal
from devstack.stack import Ports
from schemas.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CADENCE = "8s"
HORIZON = "45s"
# Values the owners report at their n-th check-in; A2's owner goes silent after one answer (an escalation).
ANSWERS: dict[str, list[float]] = {"A1": [30, 80, 140, 210], "A2": [19]}
# How each owner answers: on the check-in page (the signed link in the mail), or by replying to the mail.
BY_PAGE, BY_REPLY = "A1", "A2"


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
        console.print(styled(("✓", "green"), f" embedded stack started (data in {self.stack.data_dir})"))
        env = self.stack.env
        return settings.model_copy(update={
            "temporal_address": env["ENGAGE_TEMPORAL_ADDRESS"],
            "database_url": SecretStr(env["ENGAGE_DATABASE_URL"]),
            "smtp_url": SecretStr(env["ENGAGE_SMTP_URL"]),
            "caldav_url": env["ENGAGE_CALDAV_URL"],
            "inbound_port": self.stack.ports.inbound,
        })

    def stop(self) -> None:
        if self.started:
            self.stack.stop()


def _view(status: Any, sent: int, log: list[str]) -> Group:
    from domain.schedule import local_label

    # Text throughout: names, titles and units are what people typed, never markup (cli.views).
    head = Table.grid(padding=(0, 2))
    head.add_row(Text("engagement", style="bold"), Text(status.engagement_id))
    head.add_row(Text("phase", style="bold"), Text(status.phase.value, style="bold cyan"))
    fmt = status.format.value if status.format else status.recommendation.format.value + " (recommended)"
    head.add_row(Text("format", style="bold"), Text(fmt))
    if status.session:
        head.add_row(Text("session", style="bold"),
                     Text(local_label(status.session.starts_at, status.session.timezone)))
    head.add_row(Text("emails sent", style="bold"), Text(str(sent)))
    actions = Table("action", "owner", "last value", "status", "check-ins", "missed", "escalations")
    for a in status.actions:
        last = "-" if a.last_value is None else f"{a.last_value:g} {a.metric.unit}"
        actions.add_row(Text(f"{a.action_id} {a.title}"), Text(a.owner.name), Text(last),
                        Text(a.status.value, style=STATUS_STYLE.get(a.status.value, "")),
                        str(a.checkins_sent), str(a.missed_in_row), str(a.escalations))
    return Group(head, actions if status.actions else Text(""), *[Text(line, style="dim") for line in log[-6:]])


# ---------------------------------------------------------------------------------------------------------
# The owners: they answer from the mails they got, as a person would
# ---------------------------------------------------------------------------------------------------------


def _mails(mail_dir: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def _text(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


async def _checkin_mail(mail_dir: Path, message_id: str) -> EmailMessage:
    """The check-in mail the owner got (the sink keeps every mail), waiting a moment for it to arrive."""
    for _ in range(100):
        mail = next((m for m in _mails(mail_dir) if m["Message-ID"] == message_id), None)
        if mail is not None:
            return mail
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the check-in mail {message_id} never reached {mail_dir}")


def _post_on_page(link: str, value: float, note: str) -> str:
    """Open the link, fill the value form, submit it; the page's confirmation."""
    with urllib.request.urlopen(link, timeout=30) as response:  # noqa: S310 - the link of our own mail
        page = response.read().decode()
    form = re.search(r'id="value-form".*?name="form_id" value="([^"]+)"', page, re.DOTALL)
    if form is None:
        raise RuntimeError(f"the check-in page at {link} shows no value form")
    data = urllib.parse.urlencode({"form_id": form.group(1), "value": f"{value:g}", "note": note}).encode()
    with urllib.request.urlopen(f"{link}/value", data=data, timeout=60) as response:  # noqa: S310
        confirmed = response.read().decode()
    notice = re.search(r'id="notice"[^>]*>(.*?)</div>', confirmed, re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", notice.group(1)).split()) if notice else "answered"


async def answer_on_page(checkin: EmailMessage, value: float) -> str:
    link = re.search(r"https?://\S+/a/[a-z2-7]+", _text(checkin))
    if link is None:
        raise RuntimeError("the check-in mail carries no link to the check-in page")
    return await asyncio.to_thread(_post_on_page, link.group(0), value, "via the check-in page")


async def answer_by_reply(checkin: EmailMessage, owner: tuple[str, str], text: str, settings: Settings) -> str:
    """What a mail client sends: the answer on top, the original quoted below, to the Reply-To address."""
    import aiosmtplib

    quoted = "\n".join(f"> {line}" for line in _text(checkin).splitlines())
    reply = EmailMessage()
    reply["From"] = f"{owner[0]} <{owner[1]}>"
    reply["To"] = str(checkin["Reply-To"])
    reply["Subject"] = f"Re: {checkin['Subject']}"
    reply["In-Reply-To"] = str(checkin["Message-ID"])
    reply["Message-ID"] = make_msgid(domain=owner[1].rpartition("@")[2])
    reply.set_content(f"{text}\n\nOn {checkin['Date']}, engage wrote:\n{quoted}\n")
    _, response = await aiosmtplib.send(reply, hostname=settings.inbound_host, port=settings.inbound_port,
                                        sender=owner[1], recipients=[parseaddr(str(checkin["Reply-To"]))[1]],
                                        timeout=60)
    return response


def answer_mails(mail_dir: Path, engagement_id: str) -> list[EmailMessage]:
    return [m for m in _mails(mail_dir) if m["X-Engage-Kind"] == "answer" and engagement_id in str(m["Message-ID"])]


def show_answer_mails(console: Console, mail_dir: Path, engagement_id: str) -> None:
    """The first answer mail of each owner: what engage told them after they answered."""
    shown: set[str] = set()
    for mail in answer_mails(mail_dir, engagement_id):
        to = str(mail["To"])
        if to in shown:
            continue
        shown.add(to)
        how = "a reply" if mail["In-Reply-To"] else "the check-in page"
        body = re.split(r"\n-- ?\n", _text(mail))[0].strip()
        # Text, never markup: the mail carries names and titles people typed.
        console.print(Panel(Text(body), title=Text(f"Answer mail to {to} (after {how}): {mail['Subject']}"),
                            expand=False))


async def play(settings: Settings, console: Console, mail_dir: Path) -> str:
    """Run the sample engagement to the end; returns its id."""
    from adapters.email.headers import message_id_for
    from adapters.engagement_client import engagement_status, walk_to_follow_through
    from adapters.temporal import connect
    from cli.starting import start_engagement
    from schemas.common import parse_duration
    from schemas.events import Phase
    from schemas.updates import AcknowledgePreread, AddPreread, ReportMetric, ScheduleSession
    from schemas.views import SessionPlan
    from store.db import create_pool
    from workflows.engagement import EngagementWorkflow

    client = await connect(settings)
    pool = await create_pool(settings)
    now = datetime.now(ZoneInfo("UTC"))
    scoping, session_start = demo_scoping(now)
    eid = scoping.id
    # Through the same checks as `engage start`; the demo's cadence of seconds is allowed by saying so here.
    demo_settings = settings.model_copy(update={"min_cadence": parse_duration(CADENCE)})
    handle = await start_engagement(
        client, pool, demo_settings, eid, scoping, static_summary=f"{scoping.client}: demo engagement",
        static_details=f"**Client:** {scoping.client}\n\n**Sponsor:** {scoping.sponsor.name}\n\n"
                       f"**Consultant:** {scoping.consultant.name}")
    log: list[str] = [f"started {eid}"]
    status = await engagement_status(client, eid)
    chosen = status.recommendation.format

    async def scheduled(plan: SessionPlan) -> None:
        log.append(f"consultant chose {chosen.value}")
        log.append(f"session scheduled for {session_start:%H:%M:%S} {scoping.timezone}; invitations sent")
        await handle.execute_update(EngagementWorkflow.add_preread, AddPreread(
            title="Market memo", url="https://example.com/memo", days_before=1))
        await handle.execute_update(EngagementWorkflow.acknowledge_preread,
                                    AcknowledgePreread(participant=scoping.participants[0].email))
        log.append(f"pre-read sent; {scoping.participants[0].name} has read it")

    async def consultant() -> None:
        # The outcomes go in once the session has begun (tried again while a busy worker has not seen it begin).
        await walk_to_follow_through(
            # Due dates counted from the day after the session, in the client's zone: from `now`'s UTC date they
            # were "not after today" for an hour each night, once it was already tomorrow in Berlin.
            handle, demo_outcomes(session_start.date() + timedelta(days=1)),
            ScheduleSession(on=session_start.date(), at=session_start.strftime("%H:%M:%S"),
                            days=status.recommendation.days),
            format=chosen, scheduled=scheduled, after_start=timedelta(seconds=0.5), outcomes_attempts=120,
            retry_every=timedelta(seconds=0.5))
        log.append("consultant recorded the outcomes: 2 actions")

    # The consultant's walk runs beside the view and the owners' answers.
    walk = asyncio.create_task(consultant())
    answered: dict[str, int] = {}
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            if walk.done():
                walk.result()  # the walk's failure ends the demo with it
            status = await engagement_status(client, eid)
            sent = await pool.fetchval("SELECT count(*) FROM outbound_messages WHERE engagement_id = $1", eid)
            live.update(_view(status, sent, log))
            if status.phase in (Phase.closed, Phase.cancelled):
                break
            for a in status.actions:
                values = ANSWERS.get(a.action_id, [])
                done = answered.get(a.action_id, 0)
                if a.closed_reason is None and a.checkins_sent > done and done < len(values):
                    answered[a.action_id] = done + 1
                    checkin = await _checkin_mail(mail_dir, message_id_for(
                        f"{eid}/{a.action_id}/checkin/{done + 1}", settings.mail_from.rpartition("@")[2]))
                    if a.action_id == BY_PAGE:
                        told = await answer_on_page(checkin, values[done])
                        log.append(f"{a.owner.name} answered check-in {done + 1} on the page: {told}")
                    elif a.action_id == BY_REPLY:
                        told = await answer_by_reply(checkin, (a.owner.name, a.owner.email), f"{values[done]:g}",
                                                     settings)
                        log.append(f"{a.owner.name} replied to check-in {done + 1}: {told}")
                    else:
                        view = await handle.execute_update(EngagementWorkflow.report_metric,
                                                           ReportMetric(action_id=a.action_id, value=values[done]))
                        log.append(f"{a.owner.name} answered check-in {done + 1}: {values[done]:g} -> "
                                   f"{view.status.value}")
            await asyncio.sleep(0.5)
    await walk
    await pool.close()
    return eid


async def write_report(settings: Settings, engagement_id: str, out_dir: Path) -> tuple[str, Path]:
    from cli.report.html import render_html
    from cli.report.markdown import render_markdown
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
    console = terminal()
    stack = DemoStack(data_dir, ports)
    began = clock.monotonic()
    try:
        settings = stack.ensure(settings, console)
        mail_dir = data_dir / "mail"
        engagement_id = asyncio.run(play(settings, console, mail_dir))
        markdown, html_path = asyncio.run(write_report(settings, engagement_id, data_dir / "reports"))
        from rich.markdown import Markdown

        show_answer_mails(console, mail_dir, engagement_id)
        # Markdown as markdown, no more: links are shown with their address, never as hidden terminal links.
        console.print(Markdown(markdown, hyperlinks=False))
        ui = f"http://127.0.0.1:{stack.stack.ports.ui}" if stack.started else "the Temporal UI of your stack"
        console.print(styled("\n", ("Demo finished", "bold green"), f" in {clock.monotonic() - began:.0f} s. "
                             f"HTML report: {html_path}\nWorkflows: {ui}/namespaces/default/workflows"))
        if stack.started and keep_running:
            console.print("The stack keeps running so you can browse the UI; Ctrl-C stops it.")
            stopped = threading.Event()
            try:
                stopped.wait()
            except KeyboardInterrupt:
                pass
    finally:
        stack.stop()
