"""The check-in page (`engage web`): one click from every check-in mail, the owner sees the action and answers.

`GET /a/{token}` shows the action, its metric, the value history (the report's chart), the status and the next
check-in; it changes nothing, because mail security scanners open every link in a mail. Answers are POSTs to
`/a/{token}/value`, `/snooze` or `/blocked`, each carrying the signed token in its path and a one-time form id
rendered into the form. The form id is the Temporal update id (`page/<form id>`) and the ledger's key
(`page:<form id>`, store/inbound.py): a double submit, a reload or a back-button resubmit records once.

The token (adapters/tokens.py) names an answer scope kept server-side (store/scopes.py): one action's check-in
for one recipient, until it expires. Every refusal is a page that says what to do, never a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import math
import re
import secrets
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import asyncpg
import jinja2
import structlog
from markupsafe import Markup
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from adapters.answers import AnswerUnconfirmed, Applied, Refused, Submission, submit_answer
from adapters.email.send import Mailer
from adapters.engagement_client import TRANSIENT, Update, engagement_status
from adapters.inbound import ReplyDeferred, answer_mail, send_answer
from adapters.reply_reading import read_answer
from adapters.temporal import engagement_workflow_id
from adapters.tokens import InvalidReplyToken, check_token
from cli.report.chart import metric_chart_svg
from cli.report.content import STATUS_BACKGROUNDS, STATUS_COLOURS, status_label
from domain.numbers import number
from domain.schedule import local_label
from schemas.answers import AnswerScope
from schemas.common import MAX_VALUE
from schemas.events import MetricReported
from schemas.messages import OutboundMessage
from schemas.report import ActionReport, MetricPoint
from schemas.settings import Settings
from schemas.updates import BlockAction, ReportMetric, SnoozeAction
from schemas.views import ActionView, EngagementStatus
from store import inbound, scopes
from store.db import DATABASE_AWAY
from store.events import read_log
from workflows.engagement import EngagementWorkflow

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates_web"
Kind = Literal["value", "snooze", "blocked"]
KINDS: tuple[Kind, ...] = ("value", "snooze", "blocked")
UPDATES: dict[Kind, Update[ActionView]] = {"value": EngagementWorkflow.report_metric,
                                           "snooze": EngagementWorkflow.snooze_action,
                                           "blocked": EngagementWorkflow.block_action}
UPDATE_TIMEOUT = timedelta(seconds=20)
MAX_BODY = 16 * 1024
MAX_NOTE = 2000
MAX_REASON = 500
MAX_SNOOZE_DAYS = 365
# A form id: its kind and 128 random bits. The kind is part of it, so one form's id can never stand for another
# kind of answer (a replayed value form id posted to /snooze is refused, not answered with the value's result).
FORM_ID = re.compile(r"^(value|snooze|blocked)-[0-9a-f]{32}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Failed token checks allowed per client address and minute: a forger gets few guesses, an owner many links.
BAD_TOKENS_PER_MINUTE = 30

# The page also gives up on a pool that does not answer in time.
_DB_DOWN: tuple[type[BaseException], ...] = (*DATABASE_AWAY, TimeoutError)


# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _stylesheet() -> tuple[str, str]:
    """(css, its CSP hash): the page's only style, inline, allowed by hash and nothing else."""
    css = (TEMPLATES / "page.css").read_text(encoding="utf-8")
    # The status colours of the report, as classes: a style attribute would need 'unsafe-inline'.
    css += "".join(f".status-{s.value}{{color:{STATUS_COLOURS[s]};background:{STATUS_BACKGROUNDS[s]}}}\n"
                   for s in STATUS_COLOURS)
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return css, f"'sha256-{digest}'"


def content_security_policy() -> str:
    # No scripts, no frames, no fetches, no external anything; forms post back here only.
    return (f"default-src 'none'; style-src {_stylesheet()[1]}; img-src data:; form-action 'self';"
            " frame-ancestors 'none'; base-uri 'none'")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=number, status_label=status_label)
    return env


def _render(template: str, status_code: int, **variables: Any) -> HTMLResponse:
    css = _stylesheet()[0]
    html = _environment().get_template(template).render(css=Markup(css), **variables)  # noqa: S704 - our file
    return HTMLResponse(html, status_code=status_code)


def new_form_id(kind: Kind) -> str:
    return f"{kind}-{secrets.token_hex(16)}"


# ---------------------------------------------------------------------------------------------------------
# What the page shows
# ---------------------------------------------------------------------------------------------------------


class Refusal(Exception):  # noqa: N818 - control flow: a page that says no, and what to do instead
    def __init__(self, status_code: int, title: str, message: str, advice: str, *, reason: str,
                 page: Page | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message
        self.advice = advice
        self.reason = reason
        self.page = page


@dataclass
class Page:
    """Everything the page shows about one action, from the workflow (status) and the log (history)."""

    scope: AnswerScope
    engagement: EngagementStatus
    action: ActionView
    history: list[MetricPoint]

    @property
    def report(self) -> ActionReport:
        a = self.action
        return ActionReport(action_id=a.action_id, title=a.title, owner_name=a.owner.name, owner_email=a.owner.email,
                            owner_timezone=a.owner.timezone, due=a.due, assigned_at=a.assigned_at, metric=a.metric,
                            status=a.status, last_value=a.last_value, next_checkin_at=a.next_checkin_at,
                            closed_reason=a.closed_reason, history=self.history)

    def variables(self) -> dict[str, Any]:
        a = self.action
        tz = a.owner.timezone
        return {
            "engagement": self.engagement,
            "a": a,
            "chart": Markup(metric_chart_svg(self.report)),  # noqa: S704 - every text in it is escaped
            "next_checkin": local_label(a.next_checkin_at, tz) if a.next_checkin_at else None,
            "last_reported": local_label(a.last_reported_at, tz) if a.last_reported_at else None,
            "recipient": self.scope.recipient,
            "consultant": self.engagement.consultant,
            "history": list(reversed(self.history[-5:])),
            "tz": tz,
            "local": lambda at: local_label(at, tz),
        }


@dataclass
class Answer:
    """A validated form: what goes to the workflow, and how the ledger and the log name it."""

    kind: Kind
    form_id: str
    payload: BaseModel
    summary: str

    @property
    def update_id(self) -> str:
        return "page/" + self.form_id

    @property
    def ledger_id(self) -> str:
        return "page:" + self.form_id


class FormError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message


def _read_value(text: str) -> float:
    """The value field, read with the reply grammar (adapters/reply_reading.py), so `1,250`, `42,5` and `40k` read
    the same on the page as in a reply, and whatever a reply would refuse is refused here too."""
    text = text.strip()
    if not text:
        raise FormError("value", "Value: enter the current value, for example 42")
    if len(text) > 40 or _CONTROL.search(text) or "\n" in text:
        raise FormError("value", "Value: enter one number, for example 42")
    reading = read_answer(text)
    if reading.kind != "value" or reading.value is None:
        why = reading.why or ""
        if reading.kind != "none" or not why or "first line" in why:  # the reply's wording does not fit a field
            why = f"'{text}' is not a number we can read: write it like 42, 42.5 or 1,250"
        raise FormError("value", f"Value: {why}")
    if reading.note:
        raise FormError("value", "Value: enter the number alone; put anything else in the note")
    if not math.isfinite(reading.value) or abs(reading.value) > MAX_VALUE:
        raise FormError("value", f"Value: a value is a finite number no larger than {MAX_VALUE:g} in size")
    return reading.value


def _line(text: str, name: str, label: str, limit: int, *, required: bool) -> str | None:
    text = text.strip().replace("\r\n", "\n")
    if not text:
        if required:
            raise FormError(name, f"{label}: say in a few words what stands in the way")
        return None
    if len(text) > limit:
        raise FormError(name, f"{label}: at most {limit} characters, this one has {len(text)}")
    if _CONTROL.search(text) or (name != "note" and "\n" in text):
        raise FormError(name, f"{label}: remove the control characters")
    return text


def parse_form(kind: Kind, form: dict[str, str], action_id: str) -> Answer:
    """A strict reading of a posted form, or FormError naming the field. Nothing is guessed."""
    form_id = form.get("form_id", "")
    match = FORM_ID.fullmatch(form_id)
    if match is None or match.group(1) != kind:
        raise FormError("form_id", "This form is not one this page made: reload the page and answer again")
    try:
        if kind == "value":
            value = _read_value(form.get("value", ""))
            note = _line(form.get("note", ""), "note", "Note", MAX_NOTE, required=False)
            if note is not None:
                note = " ".join(note.split())  # one line in the log and the report
            payload: BaseModel = ReportMetric(action_id=action_id, value=value, note=note, source="page")
            summary = f"value {value:g}" + (" with a note" if note else "")
        elif kind == "snooze":
            raw = form.get("amount", "").strip()
            unit = form.get("unit", "days")
            if unit not in ("days", "weeks"):
                raise FormError("unit", "Snooze: choose days or weeks")
            if not re.fullmatch(r"\d{1,3}", raw) or int(raw) < 1:
                raise FormError("amount", "Snooze: enter a whole number of days or weeks, for example 2")
            days = int(raw) * (7 if unit == "weeks" else 1)
            if days > MAX_SNOOZE_DAYS:
                raise FormError("amount", f"Snooze: at most {MAX_SNOOZE_DAYS} days (52 weeks), not {days} days")
            payload = SnoozeAction(action_id=action_id, days=days, source="page")
            summary = f"snooze {days} days"
        else:
            reason = _line(form.get("reason", ""), "reason", "Reason", MAX_REASON, required=True)
            assert reason is not None
            payload = BlockAction(action_id=action_id, reason=reason, source="page")
            summary = "blocked"
    except ValidationError as exc:  # the schema's own bounds, should the checks above ever be looser
        first = exc.errors()[0]
        raise FormError(str(first["loc"][0]) if first["loc"] else kind, f"{kind}: {first['msg']}") from None
    return Answer(kind=kind, form_id=form_id, payload=payload, summary=summary)


# ---------------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _BadTokenLimiter:
    """Failed token checks per client address over the last minute: beyond the limit, 429 without checking."""

    limit: int = BAD_TOKENS_PER_MINUTE
    seen: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, client: str) -> bool:
        hits = self.seen.get(client)
        if not hits:
            return False
        cutoff = time.monotonic() - 60
        while hits and hits[0] < cutoff:
            hits.popleft()
        return len(hits) >= self.limit

    def failed(self, client: str) -> None:
        if len(self.seen) > 10_000:  # bounded memory under a spray from many addresses
            self.seen.clear()
        self.seen.setdefault(client, deque()).append(time.monotonic())


class SecurityHeaders:
    """On every response: never cached (a page holds a signed link and one-time form ids), never referred,
    never framed, and nothing loaded or run but the page's own inline style."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"cache-control", b"referrer-policy")]
                headers += [
                    (b"cache-control", b"no-store"),
                    (b"pragma", b"no-cache"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", content_security_policy().encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"x-robots-tag", b"noindex, nofollow"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class CheckInPage:
    """The page's logic, with the Temporal client and the Postgres pool it reads and answers through."""

    def __init__(self, settings: Settings, client: Client, pool: asyncpg.Pool, *,
                 now: Any = None, update_timeout: timedelta = UPDATE_TIMEOUT) -> None:
        self.settings = settings
        self.client = client
        self.pool = pool
        self._now = now or (lambda: datetime.now(UTC))
        self.update_timeout = update_timeout
        self.limiter = _BadTokenLimiter()

    # --- the scope and the action ------------------------------------------------------------------

    def _client_address(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    async def scope_of(self, request: Request, token: str) -> AnswerScope:
        address = self._client_address(request)
        if self.limiter.blocked(address):
            raise Refusal(429, "Too many attempts", "Too many links that are not valid came from your address.",
                          "Wait a minute, then open the link in your check-in mail again.", reason="rate_limited")
        try:
            grant = check_token(token, "link", self.settings.reply_secret, self._now())
        except InvalidReplyToken as exc:
            if exc.reason == "expired":
                raise Refusal(410, "This link has expired",
                              "The link in this check-in mail is no longer valid.",
                              "Open the link in your latest check-in mail, or reply to that mail instead.",
                              reason="expired") from None
            self.limiter.failed(address)
            raise Refusal(403, "This link is not valid",
                          "The link is incomplete or has been changed, so it cannot be used to answer.",
                          "Open the link exactly as it is in your check-in mail (some mail programs break long "
                          "links: copy the whole of it), or reply to the check-in mail instead.",
                          reason=exc.reason) from None
        if grant.scope_id is None:
            raise Refusal(403, "This link is not valid", "This is not a link to a check-in page.",
                          "Reply to the check-in mail instead.", reason="not_a_link")
        scope = await scopes.lookup(self.pool, grant.scope_id)
        if scope is None or scope.action_id is None:
            raise Refusal(410, "This link is no longer known", "We have no check-in for this link any more.",
                          "Reply to the check-in mail instead, or ask your consultant for a new link.",
                          reason="unknown_scope")
        return scope

    async def page_for(self, scope: AnswerScope) -> Page:
        """The action as the workflow sees it now, with its history from the log; a Refusal (with the page,
        read-only) when the engagement or the action no longer takes answers."""
        workflow_id = engagement_workflow_id(scope.engagement_id)
        try:
            described = await self.client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(namespace=self.client.namespace,
                                                 execution=WorkflowExecution(workflow_id=workflow_id)))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Refusal(410, "This engagement has ended", "The engagement this check-in belongs to has "
                              "ended, so it takes no more answers.", "Nothing more is needed from you.",
                              reason="engagement_not_found") from None
            raise
        running = described.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
        status: EngagementStatus | None = None
        try:
            status = await engagement_status(self.client, scope.engagement_id, only=scope.action_id)
        except RPCError as exc:
            if running or exc.status in TRANSIENT:
                raise  # a closed run nobody can query any more still gets its refusal page, without history
        action = next((a for a in status.actions if a.action_id == scope.action_id), None) if status else None
        page = None
        if status is not None and action is not None:
            page = Page(scope=scope, engagement=status, action=action,
                        history=await self._history(scope.engagement_id, action.action_id))
        if action is not None and action.closed_reason is not None:
            # Said first, even once the engagement has ended: it is the more useful of the two to the owner.
            why = {"achieved": "it reached its target", "horizon": "its follow-through period is over",
                   "cancelled": "the engagement was cancelled"}.get(action.closed_reason, action.closed_reason)
            raise Refusal(410, "This action is closed", f"No more check-ins for this action: {why}.",
                          "Nothing more is needed from you. Its history stays below.", reason="action_closed",
                          page=page)
        if not running:
            raise Refusal(410, "This engagement has ended", "The engagement this check-in belongs to is no longer "
                          "running, so it takes no more answers." + (" Its history stays below." if page else ""),
                          "Nothing more is needed from you.", reason="engagement_not_running", page=page)
        if page is None:
            raise Refusal(410, "This action is no longer followed", "The engagement has no such action any more.",
                          "Ask your consultant if something is still expected from you.", reason="unknown_action")
        return page

    async def _history(self, engagement_id: str, action_id: str) -> list[MetricPoint]:
        return [MetricPoint(at=e.occurred_at, value=e.event.value, status=e.event.status, note=e.event.note)
                for e in await read_log(self.pool, engagement_id)
                if isinstance(e.event, MetricReported) and e.event.action_id == action_id]

    # --- answering ----------------------------------------------------------------------------------

    async def answer(self, page: Page, answer: Answer, bound: Any) -> tuple[int, str, str]:
        """Apply an answer once: (HTTP status, outcome, what to tell the owner)."""
        scope = page.scope
        # The form id is the update id and the ledger's key: a form sent twice (at once or later) counts once
        # (adapters/answers.py, the path a reply takes too).
        async def tell(verdict: Applied | Refused) -> tuple[str, OutboundMessage | None]:
            if isinstance(verdict, Refused):
                return verdict.detail, None
            view: ActionView = verdict.result
            return confirmation(answer, view, page.engagement), answer_mail(
                scope, answer.ledger_id, True, receipt_text(answer, view, page.engagement), page.engagement)

        try:
            submitted = await submit_answer(
                self.pool, self.client,
                Submission(scope=scope, ledger_id=answer.ledger_id, update_id=answer.update_id,
                           sender=scope.recipient, command=answer.kind, channel="page"),
                (UPDATES[answer.kind], answer.payload), tell,
                rpc_timeout=self.update_timeout, wait=self.update_timeout + timedelta(seconds=5))
        except AnswerUnconfirmed as exc:
            if not exc.timed_out:
                bound.warning("temporal unavailable", error=str(exc))
                raise _unavailable("the engagement service") from None
            bound.warning("page answer deferred", reason="update_timeout")
            raise Refusal(503, "Your answer is not confirmed yet",
                          "The engagement did not confirm your answer in time.",
                          "Send the form again in a minute (it will count once), or reply to the check-in "
                          "mail instead.", reason="update_timeout") from None
        if submitted.outcome == "duplicate":
            row = await inbound.status_of(self.pool, answer.ledger_id)
            if row is None or row["engagement_id"] != scope.engagement_id or row["action_id"] != scope.action_id:
                bound.warning("page answer refused", reason="foreign_form_id")
                return 409, "rejected", "This form belongs to another check-in: reload the page and answer again."
            told = row["detail"] or submitted.first
            bound.info("page answer repeated", first_outcome=submitted.first)
            return 200, "duplicate", f"This form was already sent, and it counted once: {told}."
        if submitted.outcome == "rejected":
            bound.warning("page answer rejected", reason=submitted.reason, detail=submitted.told)
            if submitted.reason == "engagement_not_running":
                return 410, "rejected", "Not recorded: the engagement is no longer running."
            return 409, "rejected", f"Not recorded: {submitted.told}."
        view = submitted.result
        verdict = next((v for v in view.answers if v.answer_id == answer.update_id), None)
        page.action = view
        bound.info("page answer applied", detail=verdict.detail if verdict else answer.summary,
                   status=view.status.value)
        # A receipt in the owner's inbox too, with the link to correct it; the page has confirmed already, so a
        # relay that cannot take it now only costs the receipt (logged).
        if submitted.answer is not None:
            with contextlib.suppress(ReplyDeferred):
                await send_answer(Mailer(self.settings, self.pool), submitted.answer)
        return 200, "applied", submitted.told


def confirmation(answer: Answer, view: ActionView, engagement: EngagementStatus) -> str:
    """What the owner reads once an answer is recorded (the status and next check-in follow it on the page)."""
    payload = answer.payload
    if isinstance(payload, ReportMetric):
        note = ", with your note" if payload.note else ""
        return f"{number(payload.value)} {view.metric.unit} for '{view.title}'{note}."
    if isinstance(payload, SnoozeAction):
        return f"Snoozed for {payload.days} days."
    return f"Reported blocked. {engagement.consultant.name} has been told."


def receipt_text(answer: Answer, view: ActionView, engagement: EngagementStatus) -> str:
    """The receipt mail's sentence: what was recorded and the status it gave, said where it was answered."""
    payload = answer.payload
    if isinstance(payload, ReportMetric):
        status = status_label(view.status)
        return (f"Recorded {number(payload.value)} {view.metric.unit} for '{view.title}': {status} "
                f"(answered on the check-in page).")
    return f"{confirmation(answer, view, engagement)} (Answered on the check-in page.)"


def _unavailable(what: str) -> Refusal:
    return Refusal(503, "Please try again in a few minutes", f"The check-in service cannot reach {what} right now.",
                   "Try the link again in a few minutes, or reply to the check-in mail instead: a reply is kept "
                   "until it can be recorded.", reason=f"{what}_unavailable")


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise FormError("form", "Send the form from the check-in page")
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_BODY:
        raise FormError("form", "The form is too large")
    form = await request.form(max_files=0, max_fields=10)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _values(form: dict[str, str]) -> dict[str, str]:
    """What the owner typed, to put back into the form after a refusal (never the form id of another kind)."""
    return {k: form.get(k, "")[:MAX_NOTE] for k in ("value", "note", "amount", "unit", "reason")}


def create_app(settings: Settings, client: Client | None = None, pool: asyncpg.Pool | None = None) -> Starlette:
    """The ASGI app. Without a client and pool it connects at startup and closes them at shutdown."""
    state: dict[str, CheckInPage] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> Any:
        own_pool = pool is None
        if client is None or pool is None:
            from adapters.temporal import connect
            from store.db import create_pool
            from store.migrate import migrate

            the_client = client or await connect(settings)
            the_pool = pool or await create_pool(settings)
            if own_pool:
                await migrate(the_pool)
        else:
            the_client, the_pool = client, pool
        state["page"] = CheckInPage(settings, the_client, the_pool)
        log.info("check-in page listening", public_url=settings.public_url)
        try:
            yield
        finally:
            if own_pool:
                await the_pool.close()

    def page_logic() -> CheckInPage:
        return state["page"]

    def refusal_response(refusal: Refusal) -> HTMLResponse:
        variables = refusal.page.variables() if refusal.page is not None else {}
        return _render("refused.html.j2", refusal.status_code, refusal=refusal, page=variables)

    async def guarded(request: Request, work: Any, bound: Any) -> Response:
        try:
            return await work()
        except Refusal as refusal:
            bound.info("page refused", reason=refusal.reason, status=refusal.status_code)
            return refusal_response(refusal)
        except RPCError as exc:
            bound.warning("temporal unavailable", error=type(exc).__name__, status=str(exc.status))
            return refusal_response(_unavailable("the engagement service"))
        except RuntimeError as exc:
            if "client connect" not in str(exc) and "Connection refused" not in str(exc):
                bound.exception("page failed")
                return refusal_response(Refusal(500, "Something went wrong", "This page failed on our side.",
                                                "Reply to the check-in mail instead.", reason="bug"))
            bound.warning("temporal unavailable", error=str(exc)[:200])
            return refusal_response(_unavailable("the engagement service"))
        except _DB_DOWN as exc:
            bound.warning("database unavailable", error=type(exc).__name__)
            return refusal_response(_unavailable("its database"))
        except Exception:  # noqa: BLE001 - never a traceback in front of an owner
            bound.exception("page failed")
            return refusal_response(Refusal(500, "Something went wrong", "This page failed on our side.",
                                            "Reply to the check-in mail instead.", reason="bug"))

    def render_page(page: Page, token: str, status_code: int, *, notice: dict[str, Any] | None = None,
                    errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                    form_ids: dict[str, str] | None = None) -> HTMLResponse:
        # Fresh form ids on every render: each form sent counts once, and a new answer gets a new id.
        ids = {k: new_form_id(k) for k in KINDS} | (form_ids or {})
        return _render("page.html.j2", status_code, page=page.variables(), token=token, notice=notice,
                       errors=errors or {}, typed=typed or {}, form_ids=ids)

    async def open_page(request: Request, token: str, bound: Any) -> tuple[AnswerScope, Page, Any]:
        """What the token opens: the scope it grants, the action's page as it is now, and the log bound to
        that engagement and action (a Refusal, logged by `guarded`, when the token or the action says no)."""
        logic = page_logic()
        scope = await logic.scope_of(request, token)
        scoped = bound.bind(engagement_id=scope.engagement_id, action_id=scope.action_id,
                            workflow_id=engagement_workflow_id(scope.engagement_id))
        return scope, await logic.page_for(scope), scoped

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        bound = log.bind(path="/a/…", method="GET", client=page_logic()._client_address(request))

        async def work() -> Response:
            _scope, page, bound_scope = await open_page(request, token, bound)
            bound_scope.info("page shown", status=page.action.status.value)
            return render_page(page, token, 200)

        return await guarded(request, work, bound)

    def post(kind: Kind) -> Any:
        async def submit(request: Request) -> Response:
            token = request.path_params["token"]
            bound = log.bind(path=f"/a/…/{kind}", method="POST", client=page_logic()._client_address(request))

            async def work() -> Response:
                logic = page_logic()
                scope, page, bound2 = await open_page(request, token, bound)
                form: dict[str, str] = {}
                try:
                    form = await _form(request)
                    assert page.action is not None
                    answer = parse_form(kind, form, page.action.action_id)
                except FormError as error:
                    bound2.info("page answer invalid", field=error.field_name)
                    kept = form.get("form_id", "")
                    valid = (m := FORM_ID.fullmatch(kept)) is not None and m.group(1) == kind
                    form_ids: dict[str, str] = {kind: kept} if valid else {}
                    return render_page(page, token, 400, errors={kind: error.message}, typed=_values(form),
                                       form_ids=form_ids)
                bound2 = bound2.bind(form_id=answer.form_id, kind=kind)
                code, outcome, detail = await logic.answer(page, answer, bound2)
                if outcome == "applied":
                    # The page as it is now: the new value in the chart, the new status and next check-in.
                    page.history = await logic._history(scope.engagement_id, page.action.action_id)
                elif outcome == "duplicate":
                    try:
                        page = await logic.page_for(scope)
                    except Refusal as closed:  # closed since, by this very answer perhaps: still say it counted
                        page = closed.page or page
                notice = {"outcome": outcome, "kind": kind, "detail": detail, "summary": answer.summary}
                return render_page(page, token, code, notice=notice,
                                   typed=_values(form) if outcome == "rejected" else None)

            return await guarded(request, work, bound)

        return submit

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def index(_request: Request) -> Response:
        return _render("refused.html.j2", 404, page={}, refusal=Refusal(
            404, "Check-in page", "Open the link in your check-in mail to answer it.",
            "Every check-in mail has its own link.", reason="no_token"))

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/a/{token}", show, methods=["GET"]),
        *(Route(f"/a/{{token}}/{kind}", post(kind), methods=["POST"]) for kind in KINDS),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        return _render("refused.html.j2", code, page={}, refusal=Refusal(
            code, "Not here" if code == 404 else "Not allowed",
            "There is no page at this address." if code == 404 else "This address only shows a page.",
            "Open the link in your check-in mail as it is.", reason="not_found"))

    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)],
                     exception_handlers={404: not_found, 405: not_found})


# ---------------------------------------------------------------------------------------------------------
# `engage web`
# ---------------------------------------------------------------------------------------------------------


async def serve(settings: Settings) -> None:
    """Run the check-in page until SIGINT or SIGTERM (uvicorn handles both)."""
    import uvicorn

    from adapters.temporal import connect
    from devstack.process import PortInUse, port_is_free
    from store.db import create_pool
    from store.migrate import migrate

    if not port_is_free(settings.web_port, settings.web_host):
        raise PortInUse(settings.web_port, "Check-in page", "ENGAGE_WEB_PORT")
    client = await connect(settings)
    pool = await create_pool(settings)
    try:
        await migrate(pool)
        config = uvicorn.Config(create_app(settings, client, pool), host=settings.web_host, port=settings.web_port,
                                log_config=None, access_log=False, proxy_headers=True, server_header=False,
                                lifespan="on", timeout_graceful_shutdown=10)
        await uvicorn.Server(config).serve()
    finally:
        await pool.close()


def main() -> None:
    from adapters.logging import configure_logging
    from schemas.settings import get_settings

    settings = get_settings()
    settings.refuse_production_secret("engage web")  # it signs every check-in link
    configure_logging(settings.log_format)
    asyncio.run(serve(settings))
