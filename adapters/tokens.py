"""Signed tokens: the Reply-To address of a mail and the link to the check-in page both name an answer scope.

v2, what engage sends: `version | expiry | scope id` under a 10-byte HMAC-SHA256, 23 bytes, 37 base32
characters, so the Reply-To local part `checkin+TOKEN` is 45 octets (RFC 5321 allows 64). The scope itself
(engagement, action or pre-read, check-in, recipient) is kept server-side in `answer_scopes`
(store/scopes.py), written before the mail goes out. A reply token and a link token for the same scope differ:
each purpose has its own MAC domain, so one cannot be used as the other. `reply_address` and `answer_url` sign
them for an outgoing message.

v1, sent before: the whole scope inline (92 octets). Still read, so an owner answering an old mail is heard.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, SecretStr

from schemas.answers import AnswerScope
from schemas.messages import OutboundMessage, ReplyScope
from schemas.settings import Settings

Purpose = Literal["reply", "link"]
Secret = str | bytes | SecretStr

REPLY_LOCAL_PART = "checkin"
_DOMAIN_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")

SCOPE_ID_BYTES = 8
_V2 = 2
_V2_MAC_BYTES = 10  # 80 bits: a forger gets one guess per request, and requests are rate limited
_V2_DOMAINS: dict[Purpose, bytes] = {"reply": b"engage/reply-token/v2\x00", "link": b"engage/link-token/v2\x00"}
_V2_PAYLOAD = struct.Struct(">BI8s")  # version, expiry (unix seconds), scope id


class InvalidReplyToken(ValueError):  # noqa: N818 - the name the callers know
    """A token that is malformed, forged or tampered with, or expired. `reason` says which."""

    def __init__(self, reason: Literal["malformed", "bad_signature", "expired"], detail: str) -> None:
        super().__init__(f"invalid token ({reason}): {detail}")
        self.reason = reason


class TokenGrant(BaseModel):
    """A verified, unexpired token: a v2 token names its scope by id (look it up), a v1 token carries it."""

    scope_id: bytes | None = None
    scope: AnswerScope | None = None
    expires_at: datetime


def _secret_bytes(secret: Secret) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _b32(raw: bytes) -> str:
    # Lower case without padding: relays may case-fold a local part, and base32 reads back the same either way.
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _unb32(token: str) -> bytes:
    text = token.strip().upper()
    if not text or not re.fullmatch(r"[A-Z2-7]+", text):
        raise InvalidReplyToken("malformed", "not a base32 token")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError as exc:
        raise InvalidReplyToken("malformed", "not a base32 token") from exc


def scope_id_for(engagement_id: str, key: str, recipient: str) -> bytes:
    """The opaque id of a message's answer scope: from the step's idempotency key, so a retried send signs the
    same token and finds the same row."""
    material = "\x00".join((engagement_id, key, recipient.strip().lower())).encode("utf-8")
    return hashlib.sha256(b"engage/answer-scope\x00" + material).digest()[:SCOPE_ID_BYTES]


def sign_token(scope_id: bytes, expires_at: datetime, purpose: Purpose, secret: Secret) -> str:
    if len(scope_id) != SCOPE_ID_BYTES:
        raise ValueError(f"a scope id has {SCOPE_ID_BYTES} bytes")
    payload = _V2_PAYLOAD.pack(_V2, _epoch(expires_at), scope_id)
    mac = hmac.new(_secret_bytes(secret), _V2_DOMAINS[purpose] + payload, hashlib.sha256).digest()[:_V2_MAC_BYTES]
    return _b32(payload + mac)


def check_token(token: str, purpose: Purpose, secret: Secret, now: datetime) -> TokenGrant:
    """What a token grants, or InvalidReplyToken (`malformed`, `bad_signature`, `expired`). Checks only the
    signature and the expiry: cheap enough for every SMTP RCPT and every page request, no database needed."""
    raw = _unb32(token)
    if raw[:1] == bytes([_V1]) and purpose == "reply":
        scope = verify_reply_token(token, secret, now)
        return TokenGrant(scope=scope, expires_at=scope.expires_at)
    if len(raw) != _V2_PAYLOAD.size + _V2_MAC_BYTES or raw[0] != _V2:
        raise InvalidReplyToken("malformed", "not a token engage signed")
    payload, mac = raw[:_V2_PAYLOAD.size], raw[_V2_PAYLOAD.size:]
    expected = hmac.new(_secret_bytes(secret), _V2_DOMAINS[purpose] + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected[:_V2_MAC_BYTES]):
        raise InvalidReplyToken("bad_signature", "the signature does not match: forged or tampered with")
    _, expires, scope_id = _V2_PAYLOAD.unpack(payload)
    expires_at = datetime.fromtimestamp(expires, UTC)
    if _epoch(now) >= expires:
        raise InvalidReplyToken("expired", f"the answer window closed at {expires_at.isoformat()}")
    return TokenGrant(scope_id=scope_id, expires_at=expires_at)


# ---------------------------------------------------------------------------------------------------------
# The tokens of an outgoing message: its Reply-To address and its link to the check-in page
# ---------------------------------------------------------------------------------------------------------


def answer_scope(message: OutboundMessage) -> tuple[bytes, AnswerScope] | None:
    """The scope an answer to this message may change (its id, and the row kept for it), or None."""
    if message.reply is None:
        return None
    scope = AnswerScope(engagement_id=message.engagement_id, action_id=message.reply.action_id,
                        preread_id=message.reply.preread_id, number=message.reply.number,
                        recipient=message.to.email, expires_at=message.reply.expires_at)
    return scope_id_for(message.engagement_id, message.key, message.to.email), scope


def reply_address(message: OutboundMessage, settings: Settings) -> str | None:
    """`checkin+TOKEN@inbound_domain` (45 octets before the @), or None when a reply changes nothing."""
    scoped = answer_scope(message)
    if scoped is None:
        return None
    token = sign_token(scoped[0], scoped[1].expires_at, "reply", settings.reply_secret)
    domain = _DOMAIN_UNSAFE.sub("", settings.inbound_domain)
    return f"{REPLY_LOCAL_PART}+{token}@{domain}"


def answer_url(message: OutboundMessage, settings: Settings) -> str | None:
    """The signed, expiring link to the check-in page for this message's action and recipient, or None."""
    scoped = answer_scope(message)
    if scoped is None or scoped[1].action_id is None:
        return None
    token = sign_token(scoped[0], scoped[1].expires_at, "link", settings.reply_secret)
    return f"{settings.public_url.rstrip('/')}/a/{token}"


# ---------------------------------------------------------------------------------------------------------
# v1: the scope inline (mails sent before v2)
# ---------------------------------------------------------------------------------------------------------

_V1 = 1
_V1_MAC_BYTES = 12
_V1_DOMAIN = b"engage/reply-token/v1\x00"

VerifiedReply = AnswerScope


def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("reply token numbers must not be negative")
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _field(value: str | None) -> bytes:
    raw = (value or "").encode("utf-8")
    if len(raw) > 255:
        raise ValueError("reply token field longer than 255 bytes")
    return bytes([len(raw)]) + raw


def _read_field(data: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(data) or pos + 1 + data[pos] > len(data):
        raise ValueError("truncated field")
    end = pos + 1 + data[pos]
    return data[pos + 1 : end].decode("utf-8"), end


def _v1_mac(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, _V1_DOMAIN + payload, hashlib.sha256).digest()[:_V1_MAC_BYTES]


def sign_reply_token(engagement_id: str, scope: ReplyScope, recipient_email: str, secret: Secret) -> str:
    """A v1 token: the scope inline under an HMAC. engage no longer sends these (too long for a local part);
    kept to read old mails and to test that path."""
    payload = (
        bytes([_V1])
        + struct.pack(">I", _epoch(scope.expires_at))
        + _varint(scope.number)
        + _field(engagement_id)
        + _field(scope.action_id)
        + _field(scope.preread_id)
        + _field(recipient_email.strip().lower())
    )
    return _b32(payload + _v1_mac(payload, _secret_bytes(secret)))


def verify_reply_token(token: str, secret: Secret, now: datetime) -> AnswerScope:
    """The scope a v1 token grants, or InvalidReplyToken."""
    raw = _unb32(token)
    if len(raw) <= _V1_MAC_BYTES + 5:
        raise InvalidReplyToken("malformed", "too short")
    payload, mac = raw[:-_V1_MAC_BYTES], raw[-_V1_MAC_BYTES:]
    if not hmac.compare_digest(mac, _v1_mac(payload, _secret_bytes(secret))):
        raise InvalidReplyToken("bad_signature", "the signature does not match: forged or tampered with")
    if payload[0] != _V1:
        raise InvalidReplyToken("malformed", f"unknown token version {payload[0]}")
    try:
        (expires,) = struct.unpack(">I", payload[1:5])
        number, pos = _read_varint(payload, 5)
        engagement_id, pos = _read_field(payload, pos)
        action_id, pos = _read_field(payload, pos)
        preread_id, pos = _read_field(payload, pos)
        recipient, pos = _read_field(payload, pos)
    except (ValueError, struct.error) as exc:
        raise InvalidReplyToken("malformed", str(exc)) from exc
    if pos != len(payload):
        raise InvalidReplyToken("malformed", "trailing bytes")
    expires_at = datetime.fromtimestamp(expires, UTC)
    if _epoch(now) >= expires:
        raise InvalidReplyToken("expired", f"the reply window closed at {expires_at.isoformat()}")
    return AnswerScope(engagement_id=engagement_id, action_id=action_id or None, preread_id=preread_id or None,
                       number=number, recipient=recipient, expires_at=expires_at)
