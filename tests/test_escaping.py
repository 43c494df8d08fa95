"""Hostile text in every user-provided field of every html output: each mail kind, the html report, the check-in
page. Whatever people type (client, names, titles, metric names and units, notes, reasons, decisions, dot-vote
options, pre-read titles and links, answer texts) comes out as text, never as markup, and still reads.

The check is structural: each output is rendered twice, once with plain words and once with hostile text in the
same fields, and parsed with `html.parser`; the two must have the same elements with the same attributes (user text
added none), no link may point anywhere but http(s) or `#`, and the hostile text must be in the page's text,
unescaped by the parser exactly as a browser would show it. Also: values at their bounds (|v| <= 1e15) in the
report, its chart and the mails.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.email.render import _HTML, _TEXT, TEMPLATES, _safe_url, render
from adapters.inbound import answer_mail
from adapters.web import Answer, FormError, Page, Refusal, _render, confirmation, new_form_id, parse_form, receipt_text
from cli.report.chart import metric_chart_svg, tick_label, value_ticks
from cli.report.html import render_html
from cli.report.markdown import render_markdown
from domain.format import recommend
from domain.numbers import number
from domain.status import action_status, due_datetime
from schemas.answers import AnswerScope
from schemas.common import MAX_VALUE, is_web_url
from schemas.events import MessageKind, Phase
from schemas.messages import ActionSummary, MessageContext, OutboundMessage, Recipient, ReplyScope
from schemas.outcomes import Direction, DotVote, Metric, Outcomes, Owner
from schemas.report import ActionReport, MetricPoint, Report
from schemas.scoping import Consultant, Person, Scoping
from schemas.status import ActionStatus
from schemas.updates import AddPreread, ReportMetric
from schemas.views import ActionView, EngagementStatus
from tests.strategies import examples

EXAMPLES = Path(__file__).parent.parent / "examples"
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
ASSIGNED = datetime(2027, 2, 12, 16, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"

# Markup that would run, load or restyle something if it ever reached a page unescaped, a template expression
# that must not be evaluated, and characters that end an attribute or open an entity.
PAYLOAD = ('<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a>'
           "<svg onload=alert(1)><style>*{color:red}</style>{{ 7*7 }}{% raw %}' \" & &amp; -->")
EVIL_URL = 'javascript:alert(1)//"><script>alert(1)</script>'
# An address the schema accepts, with every character it allows that matters in html.
EVIL_EMAIL = "o'neil&{x}|`y`@acme.example"


def hostile(field: str) -> str:
    """A payload that also names its field, so a test can tell which field came out where."""
    return f"[{field}] {PAYLOAD}"


def benign(field: str) -> str:
    return f"[{field}] plain words"


# ---------------------------------------------------------------------------------------------------------
# Reading html the way a browser would
# ---------------------------------------------------------------------------------------------------------


class Parsed(HTMLParser):
    """The elements (tag and attribute names, in order), every attribute value, and the text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.structure: list[tuple[str, tuple[str, ...]]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.structure.append((tag, tuple(name for name, _ in attrs)))
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def tags(self) -> set[str]:
        return {tag for tag, _ in self.structure}


def assert_inert(html: str, plain_html: str, texts: list[str]) -> Parsed:
    """`html` (hostile) has exactly the elements and attributes of `plain_html` (plain words in the same fields),
    no event handler, no link but http(s) or `#`, and each of `texts` in its text, as typed."""
    page, plain = Parsed(html), Parsed(plain_html)
    assert page.structure == plain.structure, "user text added or removed an element or an attribute"
    assert not page.tags & {"script", "img", "iframe", "object", "embed"}
    for tag, name, value in page.attributes:
        assert not name.startswith("on"), f"<{tag} {name}=...>"
        if name in ("href", "src", "action", "formaction", "xlink:href"):
            assert value == "#" or value.startswith(("/", "http://", "https://", "data:image/")), \
                f"<{tag} {name}={value!r}>"
            assert "javascript:" not in value.lower()
    for text in texts:
        assert text in page.text, f"{text[:40]!r}... does not read as text"
    return page


# ---------------------------------------------------------------------------------------------------------
# Every message kind
# ---------------------------------------------------------------------------------------------------------

# The fields of a message that hold text (every one of them comes from a person, or from text a person typed).
TEXT_FIELDS = [name for name, f in MessageContext.model_fields.items() if f.annotation in (str, str | None)]
URL_FIELDS = {"preread_url"}
SUMMARY_FIELDS = [name for name, f in ActionSummary.model_fields.items() if f.annotation is str]


def test_the_text_fields_are_found() -> None:
    # A new text field in MessageContext is covered without touching this file; this guards the discovery.
    assert {"client", "recipient_name", "consultant_name", "action_title", "owner_name", "metric_name", "unit",
            "reason", "preread_title", "preread_url", "answer_text", "answer_subject", "checkin_label",
            "session_label"} <= set(TEXT_FIELDS)
    assert {"title", "owner_name", "unit", "status"} <= set(SUMMARY_FIELDS)


def context_of(text: Callable[[str], str], *, url: str = "https://docs.example/memo",
               values: tuple[float, float, float] = (10, 40, 22.5), recorded: bool = True) -> MessageContext:
    fields: dict[str, Any] = {name: text(name) for name in TEXT_FIELDS}
    fields.update(
        preread_url=url, due=date(2027, 6, 30), days=2, checkin_number=3, missed_in_row=2,
        baseline=values[0], target=values[1], last_value=values[2], answer_recorded=recorded,
        agenda=[text("agenda.0"), text("agenda.1")],
        actions=[ActionSummary(**{name: text(f"actions.{i}.{name}") for name in SUMMARY_FIELDS},
                               last_value=values[2], baseline=values[0], target=values[1], due=date(2027, 6, 30))
                 for i in range(2)],
    )
    return MessageContext(**fields)


def message_of(kind: MessageKind, context: MessageContext, to_name: str = "Ana") -> OutboundMessage:
    return OutboundMessage(
        engagement_id="acme-2027", key=f"acme-2027/{kind.value}", kind=kind,
        to=Recipient(name=to_name, email="ana@acme.example"), context=context,
        reply=ReplyScope(action_id="A1", number=3, expires_at=NOW + timedelta(days=14)))


def fields_in(text: str, texts: dict[str, str]) -> list[str]:
    return [value for value in texts.values() if value in text]


@pytest.mark.parametrize("kind", list(MessageKind))
@pytest.mark.parametrize("recorded", [True, False])
def test_every_message_kind_shows_hostile_text_as_text(kind: MessageKind, recorded: bool) -> None:
    answer_link = "https://engage.example/a/token"
    hostile_context = context_of(hostile, url=EVIL_URL, recorded=recorded)
    _, _, plain_html = render(message_of(kind, context_of(benign, recorded=recorded)), answer_link)
    _, text, html = render(message_of(kind, hostile_context), answer_link)

    # Whatever the text part says a person typed, the html part says too, as text.
    typed = {k: hostile(k) for k in [*TEXT_FIELDS, "agenda.0", "agenda.1",
                                      *(f"actions.{i}.{n}" for i in range(2) for n in SUMMARY_FIELDS)]
             if k not in URL_FIELDS}
    said = fields_in(text, typed)
    assert said, "the text part shows none of the fields: the test would prove nothing"
    page = assert_inert(html, plain_html, said)
    assert "{{ 7*7 }}" in page.text, "a template expression in user text was evaluated"
    # A pre-read link that is not http(s) never becomes an href; a good one does.
    hrefs = [v for _, name, v in page.attributes if name == "href"]
    assert all(h in ("#", answer_link) for h in hrefs), hrefs
    if kind in (MessageKind.preread, MessageKind.preread_reminder):
        assert "#" in hrefs
        _, _, good = render(message_of(kind, context_of(benign)))
        assert 'href="https://docs.example/memo"' in good


def test_the_metric_unit_of_the_issue_is_escaped_in_the_mails_that_show_it() -> None:
    unit = "Evil<script>alert(1)</script><img src=x onerror=alert(1)>"
    kinds = [MessageKind.action_assignment, MessageKind.checkin_request, MessageKind.checkin_reminder,
             MessageKind.escalation, MessageKind.action_blocked]
    for kind in kinds:
        context = context_of(benign).model_copy(update={"unit": unit})
        _, text, html = render(message_of(kind, context))
        assert unit in text, kind
        assert "<script>" not in html and "<img" not in html, kind
        assert "Evil&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html, kind
        assert unit in Parsed(html).text, kind


def test_every_html_template_and_partial_escapes_and_no_text_template_is_html() -> None:
    """Autoescape belongs to the output, not to a file name: a partial of any name escapes when an html mail loads
    it (the macros did not), and neither environment loads the other output's templates."""
    unit = "<b>u</b>"
    metric = {"baseline": 1, "target": 2, "unit": unit}
    html_macros: Any = _HTML.get_template("_macros.j2").module
    text_macros: Any = _TEXT.get_template("_macros.j2").module
    assert str(html_macros.metric_range(metric)) == "from 1 to 2 &lt;b&gt;u&lt;/b&gt;"
    assert str(text_macros.metric_range(metric)) == f"from 1 to 2 {unit}"
    names = [p.name for p in TEMPLATES.iterdir() if p.name.endswith(".j2")]
    for name in names:
        if name.endswith(".txt.j2"):
            with pytest.raises(jinja2.TemplateNotFound):
                _HTML.get_template(name)
        else:
            assert _HTML.get_template(name).render is not None
        if name.endswith(".html.j2"):
            with pytest.raises(jinja2.TemplateNotFound):
                _TEXT.get_template(name)
    assert _HTML.autoescape is True and _TEXT.autoescape is False


def test_answer_mails_built_from_hostile_answers_are_inert() -> None:
    """The receipt of a page answer and the answer to a reply, built by the code that sends them."""
    status, view = engagement_status(hostile)
    plain_status, plain_view = engagement_status(benign)
    scope = AnswerScope(engagement_id="acme-2027", action_id="A1", number=1, recipient=view.owner.email,
                        expires_at=NOW + timedelta(days=14))
    for recorded in (True, False):
        mails = []
        for st_, v in ((plain_status, plain_view), (status, view)):
            answer = Answer(kind="value", form_id=new_form_id("value"), summary="value 42",
                            payload=ReportMetric(action_id="A1", value=42, note=v.title, source="page"))
            text = receipt_text(answer, v, st_) if recorded else f"'{v.blocked_reason}' for '{v.title}': not read"
            mails.append(render(answer_mail(scope, "page:x", recorded, text, st_), "https://engage.example/a/t"))
        (_, _, plain_html), (_, text, html) = mails
        said = fields_in(text, {"title": view.title, "unit": view.metric.unit, "reason": view.blocked_reason or "",
                                "client": status.client, "consultant": status.consultant.name})
        assert view.title in said and status.client in said
        assert_inert(html, plain_html, said)


def test_safe_url_lets_only_http_and_https_links_through() -> None:
    for url in ("https://docs.example/memo?a=1&b=2#x", "http://docs.example", "HTTPS://DOCS.EXAMPLE/x"):
        assert _safe_url(url) == url and is_web_url(url)
    for bad in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<script>alert(1)</script>",
                "mailto:eve@evil.example", "vbscript:x", "file:///etc/passwd", "//evil.example/x", "https:alert(1)",
                "https://", "https://docs.example/\"onmouseover=alert(1)", "https://docs.example/<x>",
                "https://docs.example/a b", "java\tscript:alert(1)", "", None):
        assert _safe_url(bad) == "#", bad


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html;base64,PHNjcmlwdD4=",
                                 "mailto:eve@evil.example", "ftp://files.example/x", "https://", "https:///path",
                                 "https://docs.example/\"><script>", "https://docs.example/a b", "docs.example/memo",
                                 "https://docs.example/" + "a" * 2000])
def test_a_preread_link_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        AddPreread(title="Memo", url=url)


def test_a_preread_link_over_http_is_kept() -> None:
    for url in ("https://docs.example/memo", "http://intranet.acme.example:8080/q1?x=1&y=it's#part"):
        assert AddPreread(title="Memo", url=url).url == url


# A property over random strings in every text field at once: no text at all breaks out of any field of any mail.
FIELD_NAMES = [n for n in TEXT_FIELDS if n not in URL_FIELDS]
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
# Text made of the pieces markup is made of, so that tags, attributes and entities actually come up.
MARKUPISH = st.lists(st.sampled_from(["<", ">", "</", "/>", "&", "&amp;", "&lt;", "&#60;", '"', "'", "=", " ", "a",
                                      "script", "img", "svg", "src=x", "onerror=", "href=", "javascript:", "{{", "}}",
                                      "{%", "%}", "<!--", "-->", "<![CDATA[", "]]>", "\u2028", "é", "🚀"]),
                     min_size=1, max_size=16).map("".join)
RANDOM_TEXT = st.one_of(MARKUPISH, ANY_TEXT)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(list(MessageKind)), texts=st.lists(RANDOM_TEXT, min_size=len(FIELD_NAMES),
                                                                 max_size=len(FIELD_NAMES)),
       url=st.one_of(RANDOM_TEXT, st.just("https://docs.example/memo")), recorded=st.booleans())
def test_no_random_text_in_any_field_adds_markup_to_a_mail(kind: MessageKind, texts: list[str], url: str,
                                                           recorded: bool) -> None:
    # Each random text between markers of its own, so the test knows where it came out (a "0" alone is in any date).
    random = {field: f"\u27e6{field}\u27e7{t}\u27e6/{field}\u27e7" for field, t in zip(FIELD_NAMES, texts, strict=True)}
    plain = context_of(benign, recorded=recorded)
    context = plain.model_copy(update={**random, "preread_url": url})
    _, _, plain_html = render(message_of(kind, plain))
    _, text, html = render(message_of(kind, context))
    shown = [t for t in random.values() if t in text]
    assert shown, "the text part shows none of the fields"
    page = assert_inert(html, plain_html, shown)
    hrefs = {v for _, name, v in page.attributes if name == "href"}
    assert hrefs <= ({"#", url.strip()} if is_web_url(url.strip()) else {"#"})


# ---------------------------------------------------------------------------------------------------------
# The html report
# ---------------------------------------------------------------------------------------------------------


def scoping_of(text: Callable[[str], str]) -> Scoping:
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    data["client"] = text("client")
    data["consultant"]["name"] = text("consultant")
    data["sponsor"]["name"] = text("sponsor")
    for i, p in enumerate(data["participants"]):
        p["name"] = text(f"participant.{i}")
    for i, o in enumerate(data["objectives"]):
        o["text"] = text(f"objective.{i}")
    return Scoping.model_validate(data)


def metric_of(text: Callable[[str], str], baseline: float = 0, target: float = 200) -> Metric:
    return Metric(name=text("metric"), unit=text("unit"), baseline=baseline, target=target,
                  direction=Direction.increase if target > baseline else Direction.decrease)


def history_of(metric: Metric, values: list[float], due: date, notes: Callable[[int], str | None]) -> list[MetricPoint]:
    points = []
    for i, value in enumerate(values):
        at = ASSIGNED + timedelta(days=10 * (i + 1))
        status = action_status(metric, value, ASSIGNED, due_datetime(due, "Europe/Berlin"), at)
        points.append(MetricPoint(at=at, value=value, note=notes(i), status=status))
    return points


def action_report(text: Callable[[str], str], action_id: str = "A1", metric: Metric | None = None,
                  values: tuple[float, ...] = (40, 120, 210), due: date = date(2027, 5, 31)) -> ActionReport:
    metric = metric or metric_of(text)
    history = history_of(metric, list(values), due, lambda i: text(f"note.{i}"))
    return ActionReport(
        action_id=action_id, title=text(f"title.{action_id}"), owner_name=text(f"owner.{action_id}"),
        owner_email=EVIL_EMAIL, owner_timezone="Europe/Berlin", due=due, assigned_at=ASSIGNED, metric=metric,
        status=history[-1].status if history else ActionStatus.no_data,
        last_value=values[-1] if values else None, checkins_sent=3, missed=1, escalations=1, snoozes=1,
        closed_reason=None, next_checkin_at=ASSIGNED + timedelta(days=60), history=history)


def report_of(text: Callable[[str], str], actions: list[ActionReport] | None = None) -> Report:
    s = scoping_of(text)
    return Report(
        engagement_id="acme-2027", client=s.client, timezone="Europe/Berlin", phase=Phase.follow_through,
        format=recommend(s).format, format_confirmed=True, session_starts_at=ASSIGNED - timedelta(days=1),
        sponsor=Person(name=s.sponsor.name, email=EVIL_EMAIL),
        consultant=Consultant(name=s.consultant.name, email="dana@consultancy.example"),
        cancel_reason=text("cancel_reason"), generated_at=NOW,
        decisions=[text("decision.0"), text("decision.1")],
        dot_votes=[DotVote(option=text("vote.0"), votes=7), DotVote(option=text("vote.1"), votes=3)],
        actions=actions if actions is not None else [action_report(text, "A1"), action_report(text, "A2", values=())])


REPORT_FIELDS = ["client", "consultant", "sponsor", "cancel_reason", "decision.0", "decision.1", "vote.0",
                 "vote.1", "metric", "unit", "title.A1", "title.A2", "owner.A1", "owner.A2", "note.0", "note.1",
                 "note.2"]


def test_the_html_report_shows_hostile_text_as_text() -> None:
    html = render_html(report_of(hostile))
    assert_inert(html, render_html(report_of(benign)), [hostile(f) for f in REPORT_FIELDS] + [EVIL_EMAIL])
    # The charts stay well-formed XML, their labels text.
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)
    assert len(svgs) == 2
    for svg in svgs:
        root = ET.fromstring(svg)
        assert not [e for e in root.iter() if e.tag.split("}")[-1] in ("script", "foreignObject", "a", "image")]
        assert root.get("aria-label", "").startswith(hostile("metric"))


def test_the_markdown_report_opens_no_html() -> None:
    text = render_markdown(report_of(hostile))
    # Every `<` is escaped, but for the `<address>` autolinks of people's emails.
    assert not re.search(r"(?<!\\)<", re.sub(r"<[^<>\s]+@[^<>\s]+>", "", text))
    assert "\\<script>alert(1)\\</script>" in text and "\\<img src=x onerror=alert(1)>" in text


# ---------------------------------------------------------------------------------------------------------
# The check-in page
# ---------------------------------------------------------------------------------------------------------


def engagement_status(text: Callable[[str], str], *, blocked: bool = True) -> tuple[EngagementStatus, ActionView]:
    s = scoping_of(text)
    metric = metric_of(text)
    view = ActionView(
        action_id="A1", title=text("title"), due=date(2027, 5, 31), metric=metric, assigned_at=ASSIGNED,
        owner=Owner(name=text("owner"), email=EVIL_EMAIL, timezone="Europe/Berlin"),
        status=ActionStatus.behind, last_value=120, last_reported_at=ASSIGNED + timedelta(days=20),
        next_checkin_at=ASSIGNED + timedelta(days=34), checkins_sent=2, values_received=2,
        blocked_reason=text("blocked_reason") if blocked else None)
    status = EngagementStatus(
        engagement_id="acme-2027", client=s.client, timezone=s.timezone, consultant=s.consultant, sponsor=s.sponsor,
        phase=Phase.follow_through, recommendation=recommend(s), actions=[view],
        outcomes_recorded_at=ASSIGNED, horizon_end=ASSIGNED + timedelta(days=90))
    return status, view


def checkin_page(text: Callable[[str], str]) -> Page:
    status, view = engagement_status(text)
    scope = AnswerScope(engagement_id="acme-2027", action_id="A1", number=2, recipient=view.owner.email,
                        expires_at=NOW + timedelta(days=14))
    history = history_of(view.metric, [40, 120], view.due, lambda i: text(f"note.{i}"))
    return Page(scope=scope, engagement=status, action=view, history=history)


def form_error(kind: str, form: dict[str, str]) -> str:
    with pytest.raises(FormError) as raised:
        parse_form(kind, {"form_id": new_form_id(kind), **form}, "A1")  # type: ignore[arg-type]
    return raised.value.message


def page_html(text: Callable[[str], str]) -> str:
    """The page after a refused value and a rejected answer: the owner's own typing is shown back to them."""
    page = checkin_page(text)
    typed = {"value": text("typed")[:40], "note": text("typed.note"), "amount": text("typed.amount"),
             "unit": text("typed.unit"), "reason": text("typed.reason")}
    answer = Answer(kind="value", form_id=new_form_id("value"), summary="value 42",
                    payload=ReportMetric(action_id="A1", value=42, note=text("note"), source="page"))
    notice = {"outcome": "applied", "kind": "value", "detail": confirmation(answer, page.action, page.engagement),
              "summary": answer.summary}
    errors = {"value": form_error("value", {"value": typed["value"]}), "snooze": form_error("snooze", {
        "amount": typed["amount"], "unit": "days"}), "blocked": text("error.blocked")}
    response = _render("page.html.j2", 400, page=page.variables(), token="tok3n", notice=notice, errors=errors,
                       typed=typed, form_ids={k: new_form_id(k) for k in ("value", "snooze", "blocked")})
    return bytes(response.body).decode()


def refused_html(text: Callable[[str], str]) -> str:
    page = checkin_page(text)
    refusal = Refusal(410, "This action is closed", "No more check-ins for this action.", "Nothing more is needed.",
                      reason="action_closed", page=page)
    response = _render("refused.html.j2", 410, refusal=refusal, page=page.variables())
    return bytes(response.body).decode()


PAGE_FIELDS = ["client", "consultant", "title", "owner", "metric", "unit", "blocked_reason", "note.0", "note.1",
               "typed.note", "typed.reason", "error.blocked"]


def test_the_checkin_page_shows_hostile_text_as_text() -> None:
    html = page_html(hostile)
    page = assert_inert(html, page_html(benign), [hostile(f) for f in PAGE_FIELDS])
    assert hostile("typed")[:40] in page.text  # the refused value, in the error, as typed
    values = {name: value for tag, name, value in page.attributes if tag == "input" and name == "value"}
    assert values, "the typed value goes back into the form"
    # The forms post back to the page's own address only.
    assert {v for _, name, v in page.attributes if name == "action"} == {
        "/a/tok3n/value", "/a/tok3n/snooze", "/a/tok3n/blocked"}


def test_the_refusal_page_with_the_action_below_shows_hostile_text_as_text() -> None:
    assert_inert(refused_html(hostile), refused_html(benign),
                 [hostile(f) for f in ("client", "title", "owner", "metric", "unit", "blocked_reason", "note.0",
                                       "consultant")])


# ---------------------------------------------------------------------------------------------------------
# Values at their bounds
# ---------------------------------------------------------------------------------------------------------

EDGE_METRICS = [
    pytest.param(0, MAX_VALUE, (MAX_VALUE, -MAX_VALUE, 0), id="0 to 1e15, values at both bounds"),
    pytest.param(-MAX_VALUE, MAX_VALUE, (-MAX_VALUE, MAX_VALUE), id="the whole range"),
    pytest.param(MAX_VALUE, -MAX_VALUE, (MAX_VALUE, 0, -MAX_VALUE), id="the whole range, decreasing"),
    pytest.param(math.nextafter(MAX_VALUE, 0), MAX_VALUE, (MAX_VALUE, math.nextafter(MAX_VALUE, 0)),
                 id="target one float step above the baseline at 1e15"),
    pytest.param(-MAX_VALUE, math.nextafter(-MAX_VALUE, 0), (-MAX_VALUE,), id="one float step at -1e15"),
    pytest.param(999_999_999_999_999, MAX_VALUE, (999_999_999_999_999.5,), id="one unit at 1e15"),
    pytest.param(0.1, 0.1 + 1e-13, (0.1 + 5e-14,), id="a tiny range"),
    pytest.param(0, 1e-9, (5e-10, 2e-9), id="tiny values"),
    pytest.param(0, 5e-324, (5e-324,), id="a subnormal target"),
    pytest.param(-1e-300, 1e-300, (0,), id="around zero, tiny"),
    pytest.param(1, 2, (), id="no values"),
]


def assert_in_frame(svg_text: str) -> ET.Element:
    """Every coordinate of the chart (a group's children moved by its translate) inside its viewBox."""
    svg = ET.fromstring(svg_text)
    _, _, width, height = (float(v) for v in svg.get("viewBox", "").split())

    def walk(element: ET.Element, dx: float, dy: float) -> None:
        moved = re.fullmatch(r"translate\(([-\d.]+),([-\d.]+)\)", element.get("transform", ""))
        if moved:
            dx, dy = dx + float(moved.group(1)), dy + float(moved.group(2))
        for name in ("x", "x1", "x2", "cx"):
            if element.get(name) is not None:
                assert 0 <= dx + float(element.get(name, "nan")) <= width, (element.tag, name, element.attrib)
        for name in ("y", "y1", "y2", "cy"):
            if element.get(name) is not None:
                assert 0 <= dy + float(element.get(name, "nan")) <= height, (element.tag, name, element.attrib)
        for pair in (element.get("points") or "").split():
            x, y = (float(v) for v in pair.split(","))
            assert 0 <= dx + x <= width and 0 <= dy + y <= height, element.attrib
        for child in element:
            walk(child, dx, dy)

    walk(svg, 0.0, 0.0)
    return svg


def readable(label: str) -> bool:
    """A number a person reads: grouped digits with a few decimals, or a short scientific form."""
    grouped = r"-?\d{1,3}(,\d{3})*(\.\d{1,16})?"
    scientific = r"-?\d(\.\d{1,16})?e-?\d{1,3}"
    return bool(re.fullmatch(f"{grouped}|{scientific}", label)) and len(label) <= 26


@pytest.mark.parametrize(("baseline", "target", "values"), EDGE_METRICS)
def test_charts_and_reports_at_the_bounds_stay_in_frame_and_readable(baseline: float, target: float,
                                                                      values: tuple[float, ...]) -> None:
    metric = metric_of(benign, baseline, target)
    action = action_report(benign, metric=metric, values=values)
    svg = assert_in_frame(metric_chart_svg(action))
    ticks = [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == "y-tick"]
    assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), f"repeated or missing tick labels: {ticks}"
    assert all(readable(t) for t in ticks), ticks
    points = [float(c.get("cy", "nan")) for c in svg.iter(f"{SVG}circle") if "point" in (c.get("class") or "")]
    assert len(points) == len(values)
    # A higher value is drawn higher (or level, where the chart cannot tell two floats apart).
    drawn = sorted(zip(values, points, strict=True))
    assert all(a[1] >= b[1] for a, b in zip(drawn, drawn[1:], strict=False))

    report = report_of(benign, [action])
    html = render_html(report)
    assert len(re.findall(r"<svg\b", html)) == 1
    markdown = render_markdown(report)
    for value in (baseline, target, *values):
        assert number(value) in markdown and readable(number(value)), number(value)
    again = Report.model_validate(json.loads(report.model_dump_json()))
    assert again.actions[0].metric == metric and [p.value for p in again.actions[0].history] == list(values)


def test_the_numbers_of_the_bounds_read_like_numbers() -> None:
    assert number(MAX_VALUE) == "1,000,000,000,000,000" and number(-MAX_VALUE) == "-1,000,000,000,000,000"
    assert number(0.1 + 0.2) == "0.3" and number(1234.5) == "1,234.5" and number(0.0000125) == "0.0000125"
    assert number(1e-7) == "1e-7" and number(5e-324) == "4.94066e-324" and number(1e300) == "1e300"
    assert number(0) == "0" and number(-0.0) == "0"
    _, text, html = render(message_of(MessageKind.checkin_request, context_of(benign, values=(-MAX_VALUE, MAX_VALUE,
                                                                                                     0.5))))
    assert "from -1,000,000,000,000,000 to 1,000,000,000,000,000" in text
    assert "from -1,000,000,000,000,000 to 1,000,000,000,000,000" in Parsed(html).text


def test_tick_labels_are_as_precise_as_their_step() -> None:
    assert [tick_label(t, 0.05) for t in (0.1, 0.15000000000000002, 0.2)] == ["0.10", "0.15", "0.20"]
    assert tick_label(1_000_000_000_000_200, 200) == "1,000,000,000,000,200"
    assert tick_label(2e-10, 1e-10) == "2e-10"
    lo, hi, ticks = value_ticks(MAX_VALUE, MAX_VALUE)
    assert lo < MAX_VALUE < hi and len(set(ticks)) == len(ticks) >= 2


def test_an_older_logs_value_beyond_the_bounds_is_drawn_at_the_bound() -> None:
    metric = metric_of(benign, 0, 200)
    action = action_report(benign, metric=metric, values=(40, 120))
    action.history.append(MetricPoint.model_construct(at=ASSIGNED + timedelta(days=40), value=1.7e308,
                                                      status=ActionStatus.achieved, note=None))
    action.last_value = 1.7e308
    svg = assert_in_frame(metric_chart_svg(action))
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "last-value"]
    assert labels == ["1.7e308"]
    assert render_html(report_of(benign, [action]))


@pytest.mark.parametrize("value", [math.nextafter(MAX_VALUE, math.inf), -1.0000001e15, math.inf, -math.inf, math.nan,
                                   1.7976931348623157e308])
def test_values_beyond_the_bounds_are_refused_at_every_entry(value: float) -> None:
    with pytest.raises(ValidationError, match="finite number no larger than 1e\\+15"):
        ReportMetric(action_id="A1", value=value)
    with pytest.raises(ValidationError, match="finite number no larger than 1e\\+15"):
        Metric(name="m", unit="u", baseline=0, target=value, direction=Direction.increase)
    with pytest.raises(ValidationError, match="finite number no larger than 1e\\+15"):
        Metric(name="m", unit="u", baseline=value, target=0, direction=Direction.decrease)
    with pytest.raises(ValidationError):
        Outcomes.model_validate({"actions": [{"title": "t", "due": "2027-06-30", "owner": {
            "name": "Ben", "email": "ben@acme.example", "timezone": "Europe/Berlin"}, "metric": {
            "name": "m", "unit": "u", "baseline": 0, "target": value, "direction": "increase"}}]})
    with pytest.raises(FormError, match="Value"):
        parse_form("value", {"form_id": new_form_id("value"), "value": f"{value:f}"[:40]}, "A1")


def test_values_at_the_bounds_are_accepted() -> None:
    assert ReportMetric(action_id="A1", value=MAX_VALUE).value == MAX_VALUE
    assert ReportMetric(action_id="A1", value=-MAX_VALUE).value == -MAX_VALUE
    assert Metric(name="m", unit="u", baseline=-MAX_VALUE, target=MAX_VALUE, direction=Direction.increase)
