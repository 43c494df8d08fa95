"""Header values that cannot break a header: one-line text, addresses, and the deterministic Message-ID."""

from __future__ import annotations

import hashlib
import re
from email.utils import formataddr, parseaddr

from schemas.settings import Settings

FROM_NAME = "engage"
# CR and LF split a header; the others are line breaks to some parsers (str.splitlines among them).
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def header_safe(value: str) -> str:
    """One header-safe line: control characters and line breaks become spaces (defence in depth: the
    schemas already reject them on input)."""
    return " ".join(_HEADER_BREAKS.sub(" ", value).split())


def addr_spec(email: str) -> str:
    """The bare address, with no line break left in it."""
    return _HEADER_BREAKS.sub("", email).strip()


def address(name: str, email: str) -> str:
    """`Name <addr>`: the name quoted, or RFC 2047 encoded when it is not ASCII; no line break survives."""
    return formataddr((header_safe(name), addr_spec(email)), charset="utf-8")


def sender_parts(settings: Settings) -> tuple[str, str]:
    """(name, address) of ENGAGE_MAIL_FROM, the name `engage` when it has none."""
    name, addr = parseaddr(header_safe(settings.mail_from))
    return name or FROM_NAME, addr_spec(addr or settings.mail_from)


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_DOMAIN_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def message_id_for(key: str, domain: str) -> str:
    """A deterministic Message-ID from an idempotency key: `<readable.part.digest@domain>`.

    The readable part keeps only safe characters (so `acme-2027/A2/checkin/3` reads as
    `acme-2027.A2.checkin.3`); the sha256 digest keeps two keys that differ only in unsafe characters apart."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    host = ".".join(p for p in _DOMAIN_UNSAFE.sub("", domain).split(".") if p) or "engage.localhost"
    # Short enough that `Message-ID: <...>` fits one 78-character line and is never folded.
    budget = max(16, 78 - len("Message-ID: <.") - len(digest) - len(host) - len("@>"))
    readable = ".".join(p for p in _ID_UNSAFE.split(key) if p)[:budget].strip(".") or "msg"
    return f"<{readable}.{digest}@{host}>"

