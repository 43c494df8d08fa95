"""What the mail tests share: the owners, finding a mail in the SMTP sink, and replying to it as a client does."""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path

from devstack.mailsink import MailSink

MAIL_DOMAIN = "engage.localhost"  # the domain of the default ENGAGE_MAIL_FROM: Message-IDs end in it
BEN = ("Ben Wu", "ben@acme.example")
ANA = ("Ana Lima", "ana@acme.example")


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


# The sink is shared by the whole test session and holds thousands of mails by its end: each file is parsed once.
# Its files never change once they have their name (the sink writes them under a temporary name, then renames).
_PARSED: dict[Path, EmailMessage] = {}


def sink_mails(sink: MailSink) -> list[EmailMessage]:
    """Every mail in the sink, oldest first."""
    found = []
    for path in sink.messages():
        msg = _PARSED.get(path)
        if msg is None:
            msg = _PARSED[path] = parse(path.read_bytes())
        found.append(msg)
    return found


async def mail_at_sink(sink: MailSink, message_id: str, timeout: float = 60.0) -> EmailMessage:
    """The mail with this Message-ID, once the sink has it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for msg in reversed(sink_mails(sink)):
            if msg["Message-ID"] == message_id:
                return msg
        assert asyncio.get_running_loop().time() < deadline, f"{message_id} never reached the sink"
        await asyncio.sleep(0.05)


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def reply_address(original: EmailMessage) -> str:
    return parseaddr(str(original["Reply-To"]))[1]


def reply(original: EmailMessage, sender: tuple[str, str], text: str, *, to: str | None = None,
          html: str | None = None) -> EmailMessage:
    """What a mail client sends: the answer on top, the original quoted below (with its own numbers)."""
    quoted = "\n".join(f"> {line}" for line in text_of(original).splitlines())
    msg = EmailMessage()
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = to or reply_address(original)
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["In-Reply-To"] = original["Message-ID"]
    msg["Message-ID"] = make_msgid(domain="acme.example")
    if html is None:
        msg.set_content(f"{text}\n\nOn Thu, 25 Feb 2027 at 09:00, engage <engage@{MAIL_DOMAIN}> wrote:\n{quoted}\n")
    else:
        msg.set_content(html, subtype="html")
    return msg
