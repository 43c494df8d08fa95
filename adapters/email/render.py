"""Mail rendering: the subject, plain text and html of an OutboundMessage from `adapters/templates` (Jinja).

Headers and MIME are in adapters/email/mime.py, sending in adapters/email/send.py."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from adapters.email.headers import header_safe
from domain.numbers import number
from schemas.common import is_web_url
from schemas.events import MessageKind
from schemas.messages import ActionSummary, OutboundMessage

TEMPLATES = Path(__file__).parent.parent / "templates"

SUBJECTS: dict[MessageKind, str] = {
    MessageKind.invitation:
        "Invitation: {{ context.format | format_label | capitalize }} for {{ context.client }}"
        "{% if context.session_label %}, {{ context.session_label }}{% endif %}",
    MessageKind.invitation_cancel:
        "Cancelled: {{ context.format | format_label | capitalize }} for {{ context.client }}"
        "{% if context.session_label %}, {{ context.session_label }}{% endif %}",
    MessageKind.preread: "Pre-read for {{ context.client }}: {{ context.preread_title }}",
    MessageKind.preread_reminder: "Reminder: pre-read for {{ context.client }}: {{ context.preread_title }}",
    MessageKind.action_assignment:
        "Your action: {{ context.action_title }}{% if context.due %} (due {{ context.due | day }}){% endif %}",
    MessageKind.checkin_request: "Check-in: {{ context.metric_name or 'progress' }} for {{ context.action_title }}",
    MessageKind.checkin_reminder:
        "Reminder: check-in on {{ context.metric_name or 'progress' }} for {{ context.action_title }}",
    MessageKind.escalation:
        "Escalation: {{ context.action_title }}"
        "{% if context.owner_name %} ({{ context.owner_name }}{% if context.missed_in_row %},"
        " {{ context.missed_in_row }} check-ins missed{% endif %}){% endif %}",
    MessageKind.action_blocked: "Blocked: {{ context.action_title }}"
                                "{% if context.owner_name %} ({{ context.owner_name }}){% endif %}",
    MessageKind.answer: "{{ context.answer_subject }}",
    MessageKind.outcomes_reminder: "Please record the outcomes for {{ context.client }}",
    MessageKind.report: "Follow-through report: {{ context.client }}",
    MessageKind.invitation_reminder:
        "Please answer: {{ context.format | format_label | capitalize }} for {{ context.client }}"
        "{% if context.session_label %}, {{ context.session_label }}{% endif %}",
    MessageKind.rsvp_declined:
        "Declined: {{ context.attendee_name or context.attendee_email or 'a participant' }} will not attend the "
        "{{ context.format | format_label }} for {{ context.client }}",
    MessageKind.action_cancel:
        "Cancelled: {{ context.action_title }}{% if context.due %} (due {{ context.due | day }}){% endif %}",
}

_FORMAT_LABELS = {
    "offsite": "leadership offsite",
    "strategy_session": "strategy session",
    "combined": "leadership offsite and strategy session",
}


def _format_label(value: object) -> str:
    if value is None:
        return "session"
    text = str(getattr(value, "value", value))
    return _FORMAT_LABELS.get(text, text.replace("_", " "))


def _number(value: object) -> str:
    """42.0 -> 42, 1234.5 -> 1,234.5, 0.125 -> 0.125: no float noise in an executive's inbox (domain/numbers.py,
    the rule of every output, so a mail and the report never print one value two ways)."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return str(value)


def _days(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0.5:
        return "half a day"
    return f"{_number(value)} day{'' if value == 1 else 's'}"


def _day(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return value.strftime("%a %-d %b %Y") if hasattr(value, "strftime") else str(value)


def _status_label(value: object) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value)).replace("_", " ")


def _status_counts(actions: list[ActionSummary]) -> str:
    counts: dict[str, int] = {}
    for action in actions:
        label = _status_label(action.status)
        counts[label] = counts.get(label, 0) + 1
    order = ["achieved", "on track", "behind", "at risk", "no data"]
    ranked = sorted(counts, key=lambda s: (order.index(s) if s in order else len(order), s))
    return ", ".join(f"{counts[s]} {s}" for s in ranked)


def _safe_url(value: object) -> str:
    # Autoescape stops attribute breakouts; this keeps `javascript:`, `data:`, `mailto:` and friends out of an href.
    text = str(value or "").strip()
    return text if is_web_url(text) else "#"


class _OutputLoader(jinja2.FileSystemLoader):
    """The templates of one output: an html environment never loads a `.txt.j2` template, nor a text one an
    `.html.j2` template, so no html template is ever rendered without autoescape."""

    def __init__(self, refused_suffix: str) -> None:
        super().__init__(TEMPLATES)
        self.refused_suffix = refused_suffix

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        if template.endswith(self.refused_suffix):
            raise jinja2.TemplateNotFound(f"{template} (not a template of this output)")
        return super().get_source(environment, template)


def _environment(*, html: bool) -> jinja2.Environment:
    """One environment per output. Autoescape belongs to the environment, not to a template's name: in Jinja a
    template is compiled escaping or not by its own name, so a macro file imported by an html template (the
    metric range, the last value) printed user text unescaped. Here every template and partial an html mail
    loads, whatever its name, escapes; the text parts and subjects never do."""
    env = jinja2.Environment(
        loader=_OutputLoader(".txt.j2" if html else ".html.j2"),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(
        format_label=_format_label,
        number=_number,
        days=_days,
        day=_day,
        status_label=_status_label,
        status_counts=_status_counts,
        safe_url=_safe_url,
    )
    return env


_HTML = _environment(html=True)
_TEXT = _environment(html=False)


@lru_cache(maxsize=len(MessageKind))
def _subject_template(kind: MessageKind) -> jinja2.Template:
    return _TEXT.from_string(SUBJECTS[kind])


def render(message: OutboundMessage, answer_url: str | None = None) -> tuple[str, str, str]:
    """(subject, plain text, html) of the message, from `templates/{kind}.txt.j2` and `.html.j2`.
    `answer_url` is the signed link to the check-in page, shown in the mails that ask for an answer."""
    kind = MessageKind(message.kind)
    subject = header_safe(_subject_template(kind).render(context=message.context))
    variables = {"context": message.context, "kind": kind.value, "subject": subject, "answer_url": answer_url}
    text = _TEXT.get_template(f"{kind.value}.txt.j2").render(variables)
    html = _HTML.get_template(f"{kind.value}.html.j2").render(variables)
    return subject, _tidy_text(text), html


def _tidy_text(text: str) -> str:
    # Optional template lines leave runs of blank lines behind; one blank line is enough.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

