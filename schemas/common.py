"""Shared field types: slugs, emails, time zones, durations, header-safe text.

Every input path (files, CLI options, updates, email replies) goes through these types, so a value that
passes here is safe to use in a workflow id, an email header, an ICS property and a SQL parameter.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import time, timedelta
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    ValidationError,
)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
ACTION_ID_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,30})$")
# Deliberately simple: a local part and a dotted domain, no spaces, no control characters, no quotes.
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms])\s*$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# The largest size of a metric value (baseline, target, reported value): far beyond any business number, well
# inside what a float holds exactly enough to compute progress and draw a chart (integers are exact to 2**53).
MAX_VALUE = 1e15
WEB_SCHEMES = ("http", "https")
MAX_URL = 2000


class StrictModel(BaseModel):
    """Unknown fields are an error: a typo in a scoping file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=True)


def _no_control_chars(value: str) -> str:
    # A CR or LF in a name or title would split an email header or an ICS line.
    if any(ord(c) < 32 and c not in "\t" for c in value) or "\x7f" in value:
        raise ValueError("must not contain control characters (line breaks included)")
    return value


def _bounded(value: float) -> float:
    if not math.isfinite(value) or abs(value) > MAX_VALUE:
        raise ValueError(f"a value must be a finite number no larger than {MAX_VALUE:g} in size")
    return value


def is_web_url(value: str) -> bool:
    """An absolute http(s) link with a host and none of the characters RFC 3986 leaves out of a URL (space,
    quote, angle bracket, backslash, control): the only kind of link users may give, so no `javascript:`,
    `data:`, `mailto:` or `file:` link reaches an href."""
    if not value or len(value) > MAX_URL or any(c.isspace() or c in '"<>`\\' or not c.isprintable() for c in value):
        return False
    try:
        host = urlsplit(value).hostname
    except ValueError:  # an unbalanced [ in the host
        return False
    return value.lower().startswith(tuple(f"{s}://" for s in WEB_SCHEMES)) and bool(host)


def _web_url(value: str) -> str:
    if not is_web_url(value):
        raise ValueError(f"{value!r} is not an http(s) link such as https://example.com/memo")
    return value


def _email(value: str) -> str:
    value = value.strip()
    if not EMAIL_RE.match(value) or len(value) > 254:
        raise ValueError(f"{value!r} is not a valid email address")
    return value.lower()


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str) -> str:
    value = value.strip()
    if value not in _known_zones():
        raise ValueError(f"{value!r} is not an IANA time zone (for example Europe/Berlin)")
    return value


def parse_duration(value: object) -> timedelta:
    """`14d`, `36h`, `15m`, `30s` (or a number of seconds, or a timedelta) to a timedelta."""
    try:
        if isinstance(value, timedelta):
            result = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"{value!r} is not a duration: a number of seconds must be finite")
            result = timedelta(seconds=value)
        elif isinstance(value, str):
            match = DURATION_RE.match(value)
            if not match:
                raise ValueError(f"{value!r} is not a duration such as 14d, 36h, 15m or 30s")
            result = timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        else:
            raise ValueError("a duration must be a string such as 14d, 36h, 15m or 30s")
    except OverflowError:
        # timedelta's own error (e.g. for 1e300 or 99999999999d) is not a ValueError: pydantic would let it
        # escape as an exception instead of a validation error naming the field.
        raise ValueError(f"{value!r} is too long for a duration") from None
    if result <= timedelta(0):
        raise ValueError("a duration must be positive")
    return result


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def _local_time(value: object) -> time:
    """HH:MM (seconds, HH:MM:SS, are accepted for demos and benchmarks that run on a clock of seconds)."""
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
        hours, minutes, seconds = (int(p) for p in (value.strip() + ":0").split(":")[:3])
        if hours < 24 and minutes < 60 and seconds < 60:
            return time(hours, minutes, seconds)
    raise ValueError(f"{value!r} is not a local time HH:MM")


def _format_local_time(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


Text = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_no_control_chars)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000), AfterValidator(_no_control_chars)]
Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_RE.pattern),
]
ActionId = Annotated[str, StringConstraints(pattern=ACTION_ID_RE.pattern)]
# A number a user gives for a metric (baseline, target, a reported value): finite, |v| <= MAX_VALUE.
Value = Annotated[float, AfterValidator(_bounded)]
WebUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL), AfterValidator(_web_url)]
Email = Annotated[str, AfterValidator(_email)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
LocalTime = Annotated[
    time, BeforeValidator(_local_time), PlainSerializer(_format_local_time, return_type=str)
]


def _loc_part(part: object) -> str:
    text = str(part)
    if not text or not text.isprintable() or text != text.strip():
        # An unknown key such as "" or "\r\n" stays visible, quoted, and cannot break the line.
        text = repr(text)
    return text if len(text) <= 80 else text[:77] + "..."


def one_line(exc: ValidationError) -> str:
    """The first problem of a validation error, naming its field: `actions.0.due: Input should be ...`."""
    first = exc.errors()[0]
    where = ".".join(_loc_part(p) for p in first["loc"]) or "input"
    message = " ".join(first["msg"].removeprefix("Value error, ").split())
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{extra}"
