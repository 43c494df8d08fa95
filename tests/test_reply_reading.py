"""Reply reading (adapters/reply_reading.py): every corpus file read exactly as expected, and the grammar's
promises as properties: each accepted way of writing a number reads back as that number; nothing outside the
grammar ever yields a value."""

from __future__ import annotations

import email
import email.policy
import math
import re
import unicodedata
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.reply_reading import Reading, explain, html_to_text, own_text, read_answer

CORPUS = Path(__file__).resolve().parent / "replies"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))


def test_the_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert files == set(EXPECTED), "every .eml has an expected reading and every expectation a file"
    assert len(files) >= 60
    assert {e["kind"] for e in EXPECTED.values()} == {"value", "snooze", "blocked", "ack", "none"}
    ids = set()
    for path in CORPUS.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["From"] == "Ben Wu <ben@acme.example>", path.name
        assert message["To"] == "engage <checkin+TOKEN@engage.localhost>", path.name
        assert str(message["Subject"]).startswith("Re: Check-in: "), path.name
        ids.add(message["Message-ID"])
    assert len(ids) == len(files), "each file has its own Message-ID"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_is_read_as_meant(name: str) -> None:
    expected = EXPECTED[name]
    explained = explain((CORPUS / name).read_bytes())
    reading = explained.reading
    got = {"kind": reading.kind, "value": reading.value, "days": reading.days, "reason": reading.reason}
    want = {"kind": expected["kind"], "value": expected.get("value"), "days": expected.get("days"),
            "reason": expected.get("reason")}
    assert got == want, f"{name} ({expected['source']}): own text {explained.own_text!r}, why {reading.why!r}"
    if reading.kind == "none":
        assert reading.why, name
    # The quoted check-in must never leak into what the owner is said to have written.
    assert "snooze 7" not in (explained.own_text or "") and "Last reported" not in (explained.own_text or "")


def _message(raw: str) -> EmailMessage:
    message = email.message_from_bytes(raw.encode(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_own_text_drops_quotes_headers_and_signatures() -> None:
    raw = ("From: Ben Wu <ben@acme.example>\nContent-Type: text/plain; charset=utf-8\n\n"
           "42\nmore next week\n\nBest,\nBen\n+84 912 345 678\n\n"
           "On Sun, Nov 29, 2026 at 5:21 PM Ana <ana@x.example> wrote:\n> snooze 7\n")
    assert own_text(_message(raw)) == "42\nmore next week"


def test_a_reply_below_the_quote_is_read() -> None:
    raw = ("From: Ben Wu <ben@acme.example>\nContent-Type: text/plain; charset=utf-8\n\n"
           "On 29/11/2026 17:21, Ana Silva wrote:\n> Reply with `snooze 7`\n> target 120\n\n38\n\n-- \nBen\n")
    assert explain(raw.encode()).reading == Reading(kind="value", value=38)


def test_html_quotes_are_marked_not_read() -> None:
    outlook = ("<html><head><style>p{}</style></head><body><p>12,5</p><div id=appendonsend></div><hr>"
               "<div id=divRplyFwdMsg>From: engage</div><p>target 200</p></body></html>")
    assert html_to_text(outlook) == "12,5"
    assert html_to_text("<p>snooze&nbsp;3</p><blockquote>42</blockquote><p>thanks</p>") == "snooze 3\n\nthanks"
    thunderbird = ('<div class="moz-cite-prefix">On 29/11/2026 17:21, Ana wrote:<br></div>'
                   '<blockquote type="cite"><p>snooze 7</p></blockquote><p>40</p>')
    assert html_to_text(thunderbird) == "40"


# ---------------------------------------------------------------------------------------------------------
# The grammar
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("42", Reading(kind="value", value=42)),
    ("42.5", Reading(kind="value", value=42.5)),
    ("42,5", Reading(kind="value", value=42.5)),
    ("1,250", Reading(kind="value", value=1250)),
    ("1.250,5", Reading(kind="value", value=1250.5)),
    ("1,250.5", Reading(kind="value", value=1250.5)),
    ("1 250", Reading(kind="value", value=1250)),
    ("1\u00a0250", Reading(kind="value", value=1250)),
    ("1\u202f250", Reading(kind="value", value=1250)),
    ("40k", Reading(kind="value", value=40000)),
    ("1.2M", Reading(kind="value", value=1200000)),
    ("40%", Reading(kind="value", value=40)),
    ("-3", Reading(kind="value", value=-3)),
    ("\u22123", Reading(kind="value", value=-3)),
    ("\u20133", Reading(kind="value", value=-3)),
    ("40 dossiers", Reading(kind="value", value=40)),
    ("40 - no need to snooze me", Reading(kind="value", value=40, note="no need to snooze me")),
    ("Hi Ana,\n\n42\nfiled on Friday", Reading(kind="value", value=42, note="filed on Friday")),
    ("snooze 2 weeks", Reading(kind="snooze", days=14)),
    ("snooze 10 days", Reading(kind="snooze", days=10)),
    ("snooze 7", Reading(kind="snooze", days=7)),
    ("Snooze", Reading(kind="snooze", days=7)),
    ("snooze 1 week - on leave", Reading(kind="snooze", days=7, note="on leave")),
    ("blocked: waiting for legal", Reading(kind="blocked", reason="waiting for legal")),
    ("Blocked - the notary is ill", Reading(kind="blocked", reason="the notary is ill")),
    ("read", Reading(kind="ack")),
    ("Done.", Reading(kind="ack")),
])
def test_the_grammar_accepts(text: str, expected: Reading) -> None:
    assert read_answer(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("about forty, I think", "the first line 'about forty, I think' is not a number"),
    ("1.250", "could be 1250 or 1.25"),
    ("1,25,0", "without guessing"),
    ("", "no text of yours"),
    ("blocked", "needs a reason"),
    ("blocked:", "needs a reason"),
    ("snooze 0", "1 to 365 days"),
    ("snooze 53 weeks", "1 to 365 days"),
    ("snooze later", "is not `snooze`"),
    ("+45 12 34 56 78", "starts with +"),
    ("030 123 456", "starts with 0"),
    ("5m", "could be a unit or a multiplier"),
    ("1e20", "not a number followed by a unit"),
    ("42 - 45", "more than one number"),
    ("40 dossiers so far", "more than a number and a unit"),
    ("Hi Ana, it is 42", "is not a number"),
    ("9" * 17, "out of range"),
    ("nan", "is not a number"),
    ("inf", "is not a number"),
])
def test_the_grammar_refuses_with_a_reason(text: str, why: str) -> None:
    reading = read_answer(text)
    assert reading.kind == "none" and reading.why is not None and why in reading.why, reading


def test_only_the_first_line_counts() -> None:
    assert read_answer("will send the numbers tomorrow\n42").kind == "none"
    assert read_answer("Thanks!\n\nsnooze 7").kind == "none"


# Numbers written in each accepted form read back as themselves.
_AMOUNTS = st.decimals(min_value=Decimal("-999999999999.99"), max_value=Decimal("999999999999.99"), places=2,
                       allow_nan=False, allow_infinity=False)


def _grouped(integer: int, mark: str) -> str:
    return f"{integer:,}".replace(",", mark)


def _forms(amount: Decimal) -> list[str]:
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    integer, fraction = divmod(magnitude, 1)
    whole = int(integer)
    decimals = f"{fraction:.2f}"[2:]
    forms = [f"{sign}{whole}.{decimals}", f"{sign}{whole},{decimals}", f"{sign}{_grouped(whole, ',')}.{decimals}",
             f"{sign}{_grouped(whole, '.')},{decimals}", f"{sign}{_grouped(whole, ' ')},{decimals}",
             f"{sign}{_grouped(whole, chr(0xa0))}.{decimals}", f"\u2212{_grouped(whole, ',')}.{decimals}" if sign
             else f"{_grouped(whole, chr(0x2009))},{decimals}"]
    if fraction == 0:
        forms += [f"{sign}{whole}", f"{sign}{whole} dossiers", f"{sign}{whole}% - about right"]
        if whole >= 1000:  # 1,250 (thousands) but never 1.250 (ambiguous)
            forms.append(f"{sign}{_grouped(whole, ',')}")
    return forms


@given(_AMOUNTS)
@example(Decimal("1250.50"))
@example(Decimal("-0.05"))
def test_every_accepted_form_reads_back(amount: Decimal) -> None:
    for form in _forms(amount):
        reading = read_answer(form)
        assert reading.kind == "value" and reading.value == float(amount), (form, reading)


@given(st.decimals(min_value=Decimal("0.1"), max_value=Decimal("999999.9"), places=1), st.sampled_from(
    [("k", 3), ("K", 3), ("M", 6), (" thousand", 3), (" million", 6), ("bn", 9)]))
def test_multipliers_read_back(amount: Decimal, suffix: tuple[str, int]) -> None:
    word, exponent = suffix
    reading = read_answer(f"{amount}{word}")
    assert reading.kind == "value" and reading.value == float(amount.scaleb(exponent))


_WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)


@given(_WORDS)
def test_nothing_outside_the_grammar_yields_a_value(text: str) -> None:
    """Any first line that does not start with a number (after an optional sign or currency) is never a value."""
    reading = read_answer(text)
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    if reading.kind == "value":
        normal = re.sub(r"\s", "", unicodedata.normalize("NFKC", first))
        assert re.match(r"^[$€£¥]?[-\u2212\u2013\uff0d]?\d", normal) or "\n" in text.strip(), (text, reading)
    if reading.value is not None:
        assert math.isfinite(reading.value) and abs(reading.value) <= 1e15


@given(st.text(alphabet="0123456789.,  -+kM%", max_size=20))
def test_numeric_noise_is_read_or_refused_never_out_of_range(text: str) -> None:
    reading = read_answer(text)
    assert reading.kind in ("value", "none")
    if reading.kind == "value":
        assert reading.value is not None and math.isfinite(reading.value) and abs(reading.value) <= 1e15
    else:
        assert reading.why


@given(st.sampled_from(["1.250", "2.500", "12.345", "999.999", "1,25,0", "1.25.0", "1,2,3"]),
       st.sampled_from(["", " dossiers", " - note"]))
def test_ambiguous_numbers_are_refused(number: str, rest: str) -> None:
    reading = read_answer(number + rest)
    assert reading.kind == "none" and reading.why
