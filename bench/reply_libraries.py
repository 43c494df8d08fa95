"""How many corpus replies (tests/replies) each reply-parsing library gets right, against adapters/reply_reading.

Every library gets the same input: the reply's text/plain part, or for an HTML-only reply its HTML where the
library reads HTML (talon, quotequail) and otherwise the HTML as text. What it returns as the owner's text goes
through the same strict grammar (`read_answer`); a file counts as right when the reading equals the expected
one. "misread" counts readings with a different value/snooze/ack/blocked than expected (the worst outcome:
a wrong answer recorded); the rest are answers lost (kind none where an answer was written). "clean" counts
the files whose extracted text carries nothing of the quoted original, the forwarded mail or the signature
(what `engage inbox explain` shows and what becomes the note).

The libraries are not dependencies of engage; install them in a scratch environment to run this:

    python -m venv /tmp/libbench && /tmp/libbench/bin/pip install pydantic pyyaml \
        mail-parser-reply email-reply-parser quotequail talon
    PYTHONPATH=. /tmp/libbench/bin/python -m bench.reply_libraries
"""

from __future__ import annotations

import email
import email.policy
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml

from adapters.reply_reading import Reading, _part_text, own_text, read_answer, render_html

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "replies"
LANGUAGES = ["en", "de", "da", "es", "fr", "it", "ja", "nl", "pl", "sv"]

Extractor = Callable[[str, bool], str]  # (plain text or HTML, is_html) -> the owner's text


def _inputs(message: EmailMessage) -> tuple[str, bool]:
    plain = message.get_body(preferencelist=("plain",))
    if isinstance(plain, EmailMessage):
        text = _part_text(plain)
        if text and text.strip():
            return text.replace("\r\n", "\n"), False
    html = message.get_body(preferencelist=("html",))
    return (_part_text(html) or "", True) if isinstance(html, EmailMessage) else ("", False)


def _as_text(html: str) -> str:
    # For libraries without an HTML reader: the visible text with our quote marks removed again, so the library
    # sees what a plain-text part would have said.
    return "\n".join(line[2:] if line.startswith("> ") else line for line in render_html(html).split("\n"))


def extractors() -> dict[str, Extractor | None]:
    found: dict[str, Extractor | None] = {}
    try:
        from mailparser_reply import EmailReplyParser as MultiLanguage

        parser = MultiLanguage(languages=LANGUAGES)
        found["mail-parser-reply 1.36"] = lambda text, is_html: parser.parse_reply(
            text=_as_text(text) if is_html else text)
    except ImportError:
        found["mail-parser-reply"] = None
    try:
        from email_reply_parser import EmailReplyParser as GitHubParser

        found["email-reply-parser 0.5.12"] = lambda text, is_html: GitHubParser.parse_reply(
            _as_text(text) if is_html else text)
    except ImportError:
        found["email-reply-parser"] = None
    try:
        import quotequail

        def quotequail_reply(text: str, is_html: bool) -> str:
            if is_html:
                return _as_text("".join(part for own, part in quotequail.quote_html(text) if own))
            return "\n".join(part for own, part in quotequail.quote(text) if own)

        found["quotequail 0.5.4"] = quotequail_reply
    except ImportError:
        found["quotequail"] = None
    try:
        import talon
        from talon import quotations
        from talon.signature.bruteforce import extract_signature

        talon.init()

        def talon_reply(text: str, is_html: bool) -> str:
            body = _as_text(quotations.extract_from_html(text)) if is_html else quotations.extract_from_plain(text)
            return str(extract_signature(body)[0])

        found["talon 1.4.4"] = talon_reply
    except ImportError:
        found["talon"] = None
    found["engage own_text"] = None  # measured apart: it reads the whole message (From header, format=flowed)
    return found


# What must not be left in the owner's text: the original's sender (quote headers), its sentences, the forwarded
# colleague's figures, a mobile client's line, a signature's phone number.
_LEAKS = ("Ana Silva", "ana@consult.example", "What is the current value", "Last reported", "55 dossiers",
          "Sent from", "Get Outlook", "+84", "Inviato da", "-----", "________")


def _clean(text: str) -> bool:
    return not any(leak in text for leak in _LEAKS)


def _same(reading: Reading, expected: dict[str, Any]) -> bool:
    return (reading.kind == expected["kind"] and reading.value == expected.get("value")
            and reading.days == expected.get("days") and reading.reason == expected.get("reason"))


def main() -> None:
    expected: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
    messages = {}
    for name in sorted(expected):
        message = email.message_from_bytes((CORPUS / name).read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages[name] = message
    rows: list[tuple[str, int | None, int | None, int | None, int | None, list[str]]] = []
    for label, extract in extractors().items():
        if extract is None and label != "engage own_text":
            rows.append((label, None, None, None, None, []))
            continue
        right, misread, errors, clean, wrong = 0, 0, 0, 0, []
        for name, message in messages.items():
            try:
                if extract is None:
                    text = own_text(message) or ""
                else:
                    text = extract(*_inputs(message))
            except Exception:  # noqa: BLE001 - a library that crashes on a sample gets it wrong
                errors += 1
                text = ""
            reading = read_answer(text)
            clean += _clean(text)
            if _same(reading, expected[name]):
                right += 1
            else:
                wrong.append(name)
                misread += reading.kind != "none"
        rows.append((label, right, misread, errors, clean, wrong))
    total = len(messages)
    print(f"{'library':28} {'right':>6} {'misread':>8} {'crashed':>8} {'clean':>6}   (of {total} corpus files)")
    for row in rows:
        if row[1] is None:
            print(f"{row[0]:28} {'not installed':>9}")
            continue
        print(f"{row[0]:28} {row[1]:>6} {row[2]:>8} {row[3]:>8} {row[4]:>6}")
        if "-v" in sys.argv:
            for name in row[5]:
                print(f"    wrong: {name}")


if __name__ == "__main__":
    main()
