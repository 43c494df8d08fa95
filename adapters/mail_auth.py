"""Is a reply authenticated by the relay in front of us? Its Authentication-Results header (RFC 8601) says.

When ENGAGE_INBOUND_TRUSTED_RELAY names the relay's authserv-id (e.g. `mx.example.com`), a reply is accepted
only if that relay's own header reports `dmarc=pass`, or `dkim=pass` / `spf=pass` for a domain aligned with the
From domain, and no `dmarc=fail`. Only the topmost run of headers from that relay counts: it adds its headers
on top of the message as it receives it, so anything further down was there before, and the sender can write
any header it likes, including one that names our relay.

Microsoft 365 writes its header without an authserv-id (`spf=pass (sender IP is ...) smtp.mailfrom=...`);
ENGAGE_INBOUND_TRUSTED_RELAY=microsoft365 trusts such a header when it is the topmost one.

The parser is our own: `authres` (PyPI, last release 2019) rejects Microsoft's header outright, and the
grammar needed here (method=result, reason, ptype.property=value, comments) is a page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses

from schemas.settings import Settings

# The setting's value that trusts Microsoft 365's header, which carries no authserv-id.
MICROSOFT_365 = "microsoft365"


@dataclass(frozen=True)
class AuthResult:
    method: str  # spf, dkim, dmarc, arc, compauth, ...
    result: str  # pass, fail, none, ...
    properties: dict[str, str] = field(default_factory=dict)  # "header.d" -> "example.com"


@dataclass(frozen=True)
class AuthResultsHeader:
    authserv_id: str | None  # None: Microsoft 365's header, which has none
    results: tuple[AuthResult, ...]


def _strip_comments(value: str) -> str:
    """The value without (comments), which nest; quoted strings are kept as they are."""
    out: list[str] = []
    depth = 0
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == '"' and depth == 0:
            quoted = True
            out.append(char)
        elif char == "(":
            depth += 1
            out.append(" ")
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


_RESINFO = re.compile(r"^([A-Za-z0-9_.-]+)(?:/[0-9]+)?=(\S+)$")


def parse_authentication_results(value: str) -> AuthResultsHeader:
    """One Authentication-Results value. Lenient where senders' relays differ (Microsoft's missing authserv-id,
    spaces around `=`); unknown methods and properties are kept, malformed pieces skipped."""
    text = re.sub(r"\s*=\s*", "=", _strip_comments(str(value)).replace("\r", " ").replace("\n", " "))
    segments = [s.strip() for s in _split_outside_quotes(text, ";")]
    first = segments[0].split() if segments else []
    authserv_id: str | None
    if first and "=" not in first[0]:
        authserv_id = first[0].lower().rstrip(".")
        segments = segments[1:]
    else:
        authserv_id = None
    results: list[AuthResult] = []
    for segment in segments:
        tokens = segment.split()
        if not tokens:
            continue
        head = _RESINFO.match(tokens[0])
        if head is None:
            continue
        properties: dict[str, str] = {}
        for token in tokens[1:]:
            key, sep, prop = token.partition("=")
            if sep:
                properties.setdefault(key.lower(), _unquote(prop))
        results.append(AuthResult(head.group(1).lower(), head.group(2).lower(), properties))
    return AuthResultsHeader(authserv_id, tuple(results))


def _relay_matches(header: AuthResultsHeader, relay: str) -> bool:
    if relay.lower() == MICROSOFT_365:
        return header.authserv_id is None
    return header.authserv_id == relay.lower().rstrip(".")


def trusted_results(message: Message, relay: str) -> list[AuthResult]:
    """The results in the topmost run of the relay's Authentication-Results headers: from the first of its
    headers down to the next header of any other kind or authserv-id."""
    found: list[AuthResult] = []
    in_run = False
    for name, value in message.raw_items():  # unparsed: reading every header parsed costs what mime_limits caps
        is_ar = name.lower() == "authentication-results"
        header = parse_authentication_results(str(value)) if is_ar else None
        ours = header is not None and _relay_matches(header, relay)
        if header is not None and ours:
            in_run = True
            found.extend(header.results)
        elif in_run:
            break
    return found


def _domain(address: str) -> str:
    address = address.strip().strip("<>")
    return address.rpartition("@")[2].lower().rstrip(".")


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment, approximated without the public suffix list: the same domain, or one a subdomain of
    the other (a sibling subdomain of the same organisation is not recognised: stricter, never looser)."""
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not domain or not from_domain:
        return False
    return domain == from_domain or domain.endswith("." + from_domain) or from_domain.endswith("." + domain)


def authentication_error(message: Message, settings: Settings) -> str | None:
    """Why this reply is not authenticated by the trusted relay, or None when it is (or no relay is configured)."""
    relay = settings.inbound_trusted_relay
    if not relay:
        return None
    addresses = [a for _, a in getaddresses([str(v) for v in message.get_all("From", [])]) if a]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return "the message needs exactly one From address"
    from_domain = _domain(addresses[0])
    results = trusted_results(message, relay)
    if not results:
        return f"no Authentication-Results from {relay}"
    dmarc = [r.result for r in results if r.method == "dmarc"]
    if "fail" in dmarc:
        return f"DMARC failed for {from_domain} at {relay}"
    if "pass" in dmarc:
        return None
    for result in results:
        if result.result != "pass":
            continue
        if result.method == "dkim":
            signer = result.properties.get("header.d") or _domain(result.properties.get("header.i", ""))
            if aligned(signer, from_domain):
                return None
        if result.method == "spf":
            envelope = result.properties.get("smtp.mailfrom", "")
            if aligned(_domain(envelope), from_domain):
                return None
    return f"neither DMARC nor a DKIM or SPF result aligned with {from_domain} passed at {relay}"
