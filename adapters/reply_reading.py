"""Reading a reply as its writer meant: pure functions shared by every inbound path (SMTP server, IMAP poller).

Two steps, each strict:

1. `own_text`: what the owner wrote, without the quoted original (`>` quotes, "On ... wrote:" headers in twelve
   languages, Outlook's "From: ... Sent: ..." block that has no `>`, forwarded-message blocks) and without the
   signature (`-- `, "Sent from my iPhone", "Get Outlook for iOS", a closing such as "Best," followed by the
   owner's name, phone lines). Top-posted, bottom-posted (Thunderbird) and interleaved replies all work: `>`
   blocks are cut out wherever they are; an Outlook block or a forwarded block ends the owner's text, because
   everything below it is someone else's mail.
2. `read_answer`: a grammar, not a search. The answer is the first non-empty line (one salutation line such as
   "Hi Ana," may come before it); anything that is not exactly a value, `snooze ...`, `blocked: ...`, `read`
   or `done` is refused with a `why` the owner can act on. A number in the quoted original, a date in a quote
   header or a phone number in a signature can never become the value, because only the first line is read.

No I/O, no Temporal, no database: the same bytes always give the same reading.
"""

from __future__ import annotations

import email
import email.policy
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from schemas.common import MAX_VALUE, Value

DEFAULT_SNOOZE_DAYS = 7
MAX_SNOOZE_DAYS = 365
MAX_REASON = 500
MAX_NOTE = 2000

ReadingKind = Literal["value", "snooze", "blocked", "ack", "none"]


class Reading(BaseModel):
    """What one reply says: exactly one answer, or `none` with the reason nothing was read."""

    kind: ReadingKind
    value: Value | None = None  # finite and bounded, as at every other entry
    days: int | None = Field(default=None, ge=1, le=MAX_SNOOZE_DAYS)
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON)
    note: str | None = Field(default=None, max_length=MAX_NOTE)
    why: str | None = None

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Reading:
        required = {"value": "value", "snooze": "days", "blocked": "reason", "none": "why"}.get(self.kind)
        if required is not None and getattr(self, required) is None:
            raise ValueError(f"a {self.kind} reading needs {required}")
        for name in ("value", "days", "reason"):
            if getattr(self, name) is not None and required != name:
                raise ValueError(f"a {self.kind} reading has no {name}")
        return self


class Explained(BaseModel):
    """How a raw reply is read: the owner's own text and what it says (for support: `engage inbox explain`)."""

    own_text: str | None
    reading: Reading


# ---------------------------------------------------------------------------------------------------------
# HTML to text
# ---------------------------------------------------------------------------------------------------------

# A line the HTML renderer writes where a client starts the quoted original without a blockquote (Outlook):
# everything after it is someone else's mail. A private-use character, so no real text can contain it.
_ORIGINAL_FOLLOWS = "\ue000"


class _HtmlText(HTMLParser):
    """The visible text of an HTML mail, with quotes kept but marked: blockquote lines start with `> ` (as a
    plain-text client would write them) and Outlook's reply header becomes the `_ORIGINAL_FOLLOWS` line.
    Marking instead of stopping lets a reply written below the quote (Thunderbird) still be read."""

    _BLOCKS = {"p", "div", "br", "tr", "li", "ul", "ol", "table", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
               "blockquote", "section", "article", "header", "footer", "dd", "dt", "dl"}
    _HIDDEN = {"script", "style", "head", "title", "template"}
    _VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source"}
    # Where a client starts the original without a blockquote: Outlook desktop and web, Outlook for Mac/iOS.
    _ORIGINAL_IDS = {"appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container",
                     "stopspelling", "x_divrplyfwdmsg", "x_appendonsend"}
    _ORIGINAL_CLASSES = {"outlookmessageheader", "x_outlookmessageheader"}
    # Quotes that come as a div, not a blockquote: their text is quoted text.
    _QUOTE_CLASSES = {"gmail_quote", "gmail_extra", "yahoo_quoted", "protonmail_quote", "moz-forward-container"}
    # Word's (Outlook desktop's) separator above "From: ... Sent: ...".
    _OUTLOOK_RULE = re.compile(r"border-top\s*:\s*solid", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._quote_depth = 0
        self._stack: list[tuple[str, bool, bool]] = []  # (tag, hides, quotes)
        self._at_line_start = True

    def _newline(self) -> None:
        self.parts.append("\n")
        self._at_line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        classes = set(values.get("class", "").lower().split())
        element_id = values.get("id", "").lower()
        if self._hidden == 0 and (element_id in self._ORIGINAL_IDS or classes & self._ORIGINAL_CLASSES
                                  or (tag == "div" and self._OUTLOOK_RULE.search(values.get("style", "")))):
            self._newline()
            self.parts.append(_ORIGINAL_FOLLOWS)
            self._newline()
        hides = tag in self._HIDDEN
        quotes = tag == "blockquote" or (tag == "div" and bool(classes & self._QUOTE_CLASSES))
        if tag not in self._VOID:
            self._stack.append((tag, hides, quotes))
            self._hidden += hides
            self._quote_depth += quotes
        if tag in self._BLOCKS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._VOID:
            return
        # Close up to the matching open tag: real-world HTML leaves <p> and <div> unclosed.
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                for _, hides, quotes in self._stack[index:]:
                    self._hidden -= hides
                    self._quote_depth -= quotes
                del self._stack[index:]
                break
        if tag in self._BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        lines = data.split("\n")
        for index, line in enumerate(lines):
            if index:
                self.parts.append(" ")  # a newline inside HTML text is a space
            if self._quote_depth and self._at_line_start and line.strip():
                self.parts.append("> " * self._quote_depth)
            if line.strip():
                self._at_line_start = False
            self.parts.append(line)


def render_html(html: str) -> str:
    """The visible text of an HTML mail, one line per block, quotes marked with `> ` (see `_HtmlText`)."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.replace("\u00a0", " ").split()) for line in "".join(parser.parts).split("\n"))
    return _squeeze_blank_lines(list(lines))


def html_to_text(html: str) -> str:
    """The visible text of an HTML reply without its quoted original (signatures are kept)."""
    return _squeeze_blank_lines(_without_quotes(render_html(html).split("\n")))


def _squeeze_blank_lines(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    return "\n".join(out).strip()


# ---------------------------------------------------------------------------------------------------------
# Finding the owner's own text
# ---------------------------------------------------------------------------------------------------------

# The verb that ends an attribution line, in the languages owners write in.
_ATTRIBUTION = re.compile(
    r"\b(?:wrote|schrieb|a\s+écrit|escribió|ha\s+scritto|schreef|escreveu|skrev|kirjoitti"
    r"|napisał\(a\)|napisała|napisał|napisana|geschreven)(?!\w)[^:]{0,120}:\s*$",
    re.IGNORECASE,
)
# Outlook's header block: a From line followed by Sent/To/Subject lines, in each Outlook locale. No `>` quotes it.
_OUTLOOK_FROM = re.compile(
    r"^\s*\*?(?:From|Von|De|Da|Van|Fra|Från|Lähettäjä|Od|差出人)\s*[:：]\*?\s*\S", re.IGNORECASE)
_OUTLOOK_FIELD = re.compile(
    r"^\s*\*?(?:Sent|Date|To|Cc|Subject|Gesendet|Datum|An|Betreff|Envoyé|Date|À|A|Objet|Enviado|Enviada|Fecha"
    r"|Para|Asunto|Assunto|Inviato|Data|Oggetto|Verzonden|Aan|Onderwerp|Sendt|Dato|Til|Emne|Skickat|Till|Ämne"
    r"|Lähetetty|Päivämäärä|Vastaanottaja|Aihe|Wysłane|Wysłano|Do|Temat|Kopia|CC|送信日時|宛先|件名)\s*[:：]",
    re.IGNORECASE)
# "-----Original Message-----", "---------- Forwarded message ---------", "-------- Original-Nachricht --------".
_DASHED_SEPARATOR = re.compile(r"^\s*-{2,}\s*[^\W\d_].{2,60}?\s*-{2,}\s*$")
_FORWARD_INTRO = re.compile(
    r"^\s*(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht|Début du message réexpédié"
    r"|Début du message transféré|Inicio del mensaje reenviado|Comienzo del mensaje reenviado"
    r"|Inizio messaggio inoltrato|Begin doorgestuurd bericht|Início da mensagem reencaminhada"
    r"|Começo da mensagem encaminhada|Start på videresendt besked|Start på videresendt melding"
    r"|Vidarebefordrat mejl|Vidarebefordrat meddelande|Välitetty viesti alkaa|Początek przekazywanej wiadomości)"
    r"\s*:\s*$", re.IGNORECASE)
_OUTLOOK_RULE_LINE = re.compile(r"^\s*_{10,}\s*$")
_QUOTED = re.compile(r"^\s*>")

# Signatures: everything from one of these lines on is not the answer.
_SIGNATURE_DELIMITER = re.compile(r"^(?:-- ?|--\s*|—|__)$")
_MOBILE_SIGNATURE = re.compile(
    r"^(?:Sent from|Sent with|Get Outlook for|Von meinem|Gesendet von|Envoyé de|Envoyé depuis|Obtenir Outlook"
    r"|Enviado desde|Obtener Outlook|Inviato da|Scarica Outlook|Verzonden (?:vanaf|met)|Outlook voor"
    r"|Enviado do|Enviado (?:a partir|de)|Obter o Outlook|Sendt fra|Hent Outlook|Skickat från|Skaffa Outlook"
    r"|Lähetetty|Hanki Outlook|Wysłane z|Pobierz aplikację Outlook)\b",
    re.IGNORECASE)
_CLOSING = re.compile(
    r"^(?:best|best regards|kind regards|regards|warm regards|many thanks|thanks|thank you|thx|cheers|br"
    r"|mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|viele grüße|beste grüße|liebe grüße"
    r"|vg|lg|mfg|gruß|grüße|cordialement|bien cordialement|bien à vous|merci|saludos|un saludo|atentamente"
    r"|gracias|cordiali saluti|saluti|distinti saluti|grazie|met vriendelijke groet|vriendelijke groet|groeten"
    r"|mvg|bedankt|atenciosamente|abraços|obrigado|obrigada|cumprimentos|med venlig hilsen|venlig hilsen|mvh"
    r"|med vennlig hilsen|vennlig hilsen|hilsen|med vänliga hälsningar|vänliga hälsningar|hälsningar|mvh"
    r"|tack|ystävällisin terveisin|terveisin|kiitos|pozdrawiam|z poważaniem|dziękuję)\s*[,.!]*$",
    re.IGNORECASE)
_CONTACT_LINE = re.compile(
    r"^(?:(?:tel|phone|mobile|mob|cell|fax|m|t|p|d|handy|téléphone|tél|teléfono|telefono|telefoon|telefon"
    r"|puhelin|tlf)\.?\s*[:.]?\s*\+?\(?\d|\+\s?\d|\(\d|0\d)[\d\s()./-]{5,}\d$",
    re.IGNORECASE)

_LINE_WIDTH_FOR_WRAP = 200


def _is_attribution(line: str) -> bool:
    """An "On ..., NAME <addr> wrote:" line: a verb of writing, a colon at the end, and a date or time in it."""
    return (len(line) <= 400 and not _QUOTED.match(line) and bool(_ATTRIBUTION.search(line))
            and any(c.isdigit() for c in line))


def _attribution_at(lines: list[str], index: int) -> int:
    """How many lines the attribution at `index` spans (1, or 2 when Gmail wrapped it), or 0 if none starts here."""
    line = lines[index].strip()
    if not line:
        return 0
    if _is_attribution(line):
        return 1
    if index + 1 < len(lines):
        following = lines[index + 1].strip()
        # A complete header on the next line is the header; never glue the owner's answer onto it.
        if following and not _is_attribution(following) and len(line) <= _LINE_WIDTH_FOR_WRAP \
                and _is_attribution(f"{line} {following}") and not _QUOTED.match(following):
            return 2
    return 0


def _ends_like_attribution(line: str) -> bool:
    """A header in a language or client without a known verb ("2026年11月29日(日) 17:21 Ana <ana@x>:", Polish
    Apple Mail): a date and a closing colon. Counts only when a `>` quote follows it."""
    stripped = line.strip()
    return (stripped.endswith((":", "：")) and any(c.isdigit() for c in stripped) and len(stripped) <= 300
            and not _QUOTED.match(stripped))


def _outlook_block_at(lines: list[str], index: int) -> bool:
    """Outlook's "From: ... / Sent: ... / To: ... / Subject: ..." block, in any of its locales."""
    if not _OUTLOOK_FROM.match(lines[index]):
        return False
    fields = sum(1 for line in lines[index + 1:index + 7] if _OUTLOOK_FIELD.match(line))
    return fields >= 2


def _original_starts_at(lines: list[str], index: int) -> bool:
    """Everything from this line on is someone else's mail (no `>` marks it, so nothing below is the owner's)."""
    line = lines[index]
    return (line.strip() == _ORIGINAL_FOLLOWS or bool(_OUTLOOK_RULE_LINE.match(line))
            or bool(_DASHED_SEPARATOR.match(line)) or bool(_FORWARD_INTRO.match(line))
            or _outlook_block_at(lines, index))


def _without_quotes(lines: list[str]) -> list[str]:
    """The lines the owner wrote: `>` blocks (with their attribution) are cut out wherever they are, so a reply
    below or between quotes is kept; an unmarked original (Outlook, forwarded) ends the owner's part."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _original_starts_at(lines, index):
            break
        span = _attribution_at(lines, index) or (1 if _ends_like_attribution(line) else 0)
        if span:
            after = index + span
            while after < len(lines) and not lines[after].strip():
                after += 1
            if after < len(lines) and _QUOTED.match(lines[after]):
                index = after  # a `>` quote follows: skip it, and read on below it
                continue
            if _attribution_at(lines, index):
                break  # a known header over an unmarked original (Outlook for iOS): the rest is theirs
        if _QUOTED.match(line):
            index += 1
            continue
        kept.append(line)
        index += 1
    return kept


def _sender_names(message: EmailMessage) -> set[str]:
    """The ways the owner signs: full display name, first name, initials (lower case)."""
    name, _ = parseaddr(str(message.get("From", "")))
    words = [w for w in re.split(r"[\s,]+", name.strip().strip('"')) if w]
    if not words:
        return set()
    names = {" ".join(words).lower(), words[0].lower()}
    if len(words) > 1:
        names.add("".join(w[0] for w in words).lower())
    return names


def _without_signature(lines: list[str], names: set[str]) -> list[str]:
    """The lines above the signature: a `-- ` delimiter, a mobile client's line, or (after some text) a closing,
    the owner's name alone, or a phone line."""
    seen_text = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _SIGNATURE_DELIMITER.match(line.rstrip("\n")) or _SIGNATURE_DELIMITER.match(stripped) \
                or _MOBILE_SIGNATURE.match(stripped):
            return lines[:index]
        bare = stripped.strip("-–—/ ").rstrip(",.!").lower()
        if seen_text and (_CLOSING.match(stripped) or (bare and bare in names) or _CONTACT_LINE.match(stripped)):
            return lines[:index]
        seen_text = seen_text or bool(stripped)
    return lines


def _unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed (Thunderbird, Apple Mail): a line ending in a space goes on in the next one."""
    out: list[str] = []
    carry: tuple[int, str] | None = None
    for raw in text.split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        content = raw[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if carry is not None and carry[0] == depth:
            content = carry[1] + content
            carry = None
        elif carry is not None:
            out.append(">" * carry[0] + (" " if carry[0] else "") + carry[1])
            carry = None
        if content.endswith(" ") and content != "-- ":
            carry = (depth, content[:-1] if delsp else content)
            continue
        out.append(">" * depth + (" " if depth else "") + content)
    if carry is not None:
        out.append(">" * carry[0] + (" " if carry[0] else "") + carry[1])
    return "\n".join(out)


def _part_text(part: EmailMessage) -> str | None:
    """A text part's content as str; an unknown or lying charset is decoded as UTF-8 (or Latin-1) rather than
    dropped, so the owner still gets a reading."""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError, UnicodeError):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return None
        try:
            content = payload.decode("utf-8")
        except UnicodeDecodeError:
            content = payload.decode("latin-1")
    return content if isinstance(content, str) else None


def _body_text(message: EmailMessage) -> str | None:
    """The reply as plain text: its text/plain part, or its HTML part rendered with quotes marked."""
    for preference in ("plain", "html"):
        part = message.get_body(preferencelist=(preference,))
        if not isinstance(part, EmailMessage):
            continue
        content = _part_text(part)
        if content is None or not content.strip():
            continue
        content = content.replace("\r\n", "\n").replace("\r", "\n")
        if preference == "html":
            return render_html(content)
        params = part["Content-Type"].params if part["Content-Type"] is not None else {}
        if str(params.get("format", "")).lower() == "flowed":
            content = _unflow(content, str(params.get("delsp", "")).lower() == "yes")
        return content
    return None


def own_text(message: EmailMessage) -> str | None:
    """What the owner wrote in this reply: no quoted original, no forwarded block, no signature. None if nothing."""
    text = _body_text(message)
    if text is None:
        return None
    lines = [line.rstrip() for line in text.replace("\u00a0", " ").split("\n")]
    mine = _without_signature(_without_quotes(lines), _sender_names(message))
    return _squeeze_blank_lines(mine) or None


# ---------------------------------------------------------------------------------------------------------
# The grammar
# ---------------------------------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\ufe63": "-", "\uff0d": "-"})
_SALUTATION = re.compile(
    r"^(?:hi|hello|hey|dear|good morning|good afternoon|hallo|hi|liebe|lieber|sehr geehrte[rs]?|guten morgen"
    r"|guten tag|moin|servus|bonjour|salut|cher|chère|hola|buenos días|buenas|estimad[oa]|ciao|buongiorno|salve"
    r"|gentile|hoi|beste|goedemorgen|dag|olá|oi|bom dia|prezad[oa]|caro|cara|hej|kære|hei|kjære|god morgen"
    r"|moi|terve|hyvää huomenta|dzień dobry|cześć|witam)\b[^\d\n]{0,40}[,!:]?$",
    re.IGNORECASE)
_SEPARATORS = "-:;,.(/!"
_NUMBER = re.compile(
    r"(?P<currency>[$€£¥])?"
    r"(?P<sign>-)?"
    r"(?P<number>\d[\d.,' ]*\d|\d)"
    r"(?P<mult>bn|[kKM](?![^\W\d_]))?"
    r"\s?(?P<percent>%)?"
)
_MULTIPLIERS = {"k": 3, "K": 3, "M": 6, "bn": 9, "thousand": 3, "thousands": 3, "million": 6, "millions": 6,
                "billion": 9, "billions": 9, "tsd": 3, "tsd.": 3, "mio": 6, "mio.": 6, "mrd": 9, "mrd.": 9}
# Words that may be a multiplier in some language, or a unit: reading past them would misread the value.
_AMBIGUOUS_UNIT = re.compile(r"^(?:m|mn|mm|md|b|mil\w*|mill\w*|milj\w*|mld\w*|tys\w*|tuhat\w*|mille)\.?$", re.I)
_UNIT = re.compile(r"^(?:[^\W\d_]|[$€£¥°%])[^\s\d]*$")  # no digit: "1e20" is not 1 of unit "e20"
_SNOOZE = re.compile(
    r"^snooze(?:\s+(?:for\s+)?(?P<count>\d+)(?:\s*(?P<unit>d|days?|w|wks?|weeks?))?)?"
    r"(?:\s*[-:;,.(/!]\s*(?P<note>.*)|\s*)$",
    re.IGNORECASE)
_BLOCKED = re.compile(r"^blocked(?:\s*[:\-]\s*(?P<reason>.*))?$", re.IGNORECASE)
_ACK = re.compile(r"^(?:read|done)(?:\s*[.!]*\s*|\s*[-:;,.(/!]\s*(?P<note>.*))$", re.IGNORECASE)
_HELP = "write the number alone on the first line (for example 42), or `snooze 2 weeks`, `blocked: reason` or `done`"


def _none(why: str) -> Reading:
    return Reading(kind="none", why=why)


def _clip(text: str | None, limit: int) -> str | None:
    text = (text or "").strip()
    return (text if len(text) <= limit else text[:limit - 1].rstrip() + "…") or None


def _quote(line: str) -> str:
    return "'" + (line if len(line) <= 60 else line[:57] + "...") + "'"


def _normalise(line: str) -> str:
    """NFKC (full-width digits from Japanese keyboards, no-break and thin spaces), one kind of minus, no
    invisible characters; a line wrapped whole in markup (`*42*`, `` `42` ``) loses it."""
    line = " ".join(unicodedata.normalize("NFKC", line.translate(_INVISIBLE)).translate(_MINUS).split())
    wrapped = re.fullmatch(r"([*_`\"'])(.+)\1", line)
    return wrapped.group(2).strip() if wrapped else line


class _Refused(ValueError):
    """A number that is not read: the message says why, in the owner's terms."""


def _decimal(number: str) -> Decimal:
    """One number in an accepted form, or _Refused. Thousands groups have three digits; a lone `.ddd` or more
    than one kind of reading is refused rather than guessed."""
    shown = _quote(number)
    if " " in number or "'" in number:
        head, _, tail = number.partition(",") if "," in number else number.partition(".")
        if "," in number and "." in number:
            raise _Refused(f"{shown} mixes spaces, points and commas: write it without separators")
        groups = re.split(r"[ ']", head)
        if not re.fullmatch(r"\d{1,3}", groups[0]) or not all(re.fullmatch(r"\d{3}", g) for g in groups[1:]) \
                or (tail and not tail.isdigit()):
            raise _Refused(f"{shown} is not one number: write it without spaces, for example {head.replace(' ', '')}")
        digits = "".join(groups) + ("." + tail if tail else "")
    elif "," in number and "." in number:
        # Both: the last one is the decimal mark, the other groups thousands (1,250.5 and 1.250,5).
        decimal_mark = "." if number.rfind(".") > number.rfind(",") else ","
        group_mark = "," if decimal_mark == "." else "."
        head, _, tail = number.rpartition(decimal_mark)
        groups = head.split(group_mark)
        if not re.fullmatch(r"\d{1,3}", groups[0]) or not all(re.fullmatch(r"\d{3}", g) for g in groups[1:]) \
                or not tail.isdigit() or decimal_mark in head:
            raise _Refused(f"{shown} is not a number we can read without guessing: write it as 1250.5")
        digits = "".join(groups) + "." + tail
    elif number.count(",") + number.count(".") > 1:
        mark = "," if "," in number else "."
        groups = number.split(mark)
        if not re.fullmatch(r"\d{1,3}", groups[0]) or not all(re.fullmatch(r"\d{3}", g) for g in groups[1:]):
            raise _Refused(f"{shown} is not a number we can read without guessing: write it without separators")
        digits = "".join(groups)
    elif "," in number or "." in number:
        mark = "," if "," in number else "."
        head, _, tail = number.partition(mark)
        if len(tail) == 3 and len(head) <= 3 and not head.startswith("0"):
            if mark == ".":  # 1.250 is 1250 in Europe and 1.25 elsewhere
                small = f"{head}.{tail}".rstrip("0").rstrip(".")
                raise _Refused(f"{shown} could be {head}{tail} or {small}: write {head}{tail} or {small}")
            digits = head + tail  # 1,250: a comma before three digits groups thousands
        else:
            digits = f"{head}.{tail}"  # 42.5, 42,5, 0,250, 1234.567: no grouping reads them otherwise
    else:
        digits = number
    integer = digits.partition(".")[0]
    if len(integer) > 1 and integer.startswith("0"):
        raise _Refused(f"{shown} starts with 0 like a phone number or a code, not a value: write the value alone")
    try:
        return Decimal(digits)
    except InvalidOperation:
        raise _Refused(f"{shown} is not a number") from None


def _read_value(line: str, note_below: str | None) -> Reading | None:
    """A value line: NUMBER [k|M|bn|%] [unit word] [separator note]. None if the line does not start with one."""
    match = _NUMBER.match(line)
    if match is None:
        if line[:1] == "+" and _NUMBER.match(line[1:]):
            return _none(f"the first line {_quote(line)} starts with + (a change, or a phone number?): write the "
                         f"current value alone, without a sign")
        return None
    number = match.group("number")
    rest = line[match.end():]
    trailing_space_group = re.match(r"^(.*?\d)( \d{1,2}|\s\d{4,})$", number)
    if trailing_space_group:
        return _none(f"the first line {_quote(line)} has more than one number at the start: {_HELP}")
    try:
        amount = _decimal(number)
    except _Refused as refused:
        return _none(str(refused))
    exponent = _MULTIPLIERS.get(match.group("mult") or "", 0)
    note = rest.strip()
    unit = ""
    if note and note[0] not in _SEPARATORS:
        unit, _, after = note.partition(" ")
        after = after.strip()
        if unit.lower() in _MULTIPLIERS and not exponent:
            exponent = _MULTIPLIERS[unit.lower()]
        elif _AMBIGUOUS_UNIT.match(unit):
            return _none(f"in {_quote(line)}, '{unit}' could be a unit or a multiplier: write the number in "
                         f"full digits, or the unit in full")
        elif not _UNIT.match(unit):
            return _none(f"the first line {_quote(line)} is not a number followed by a unit: {_HELP}")
        if after and after[0] not in _SEPARATORS:
            return _none(f"the first line {_quote(line)} has more than a number and a unit: write the number "
                         f"(and a unit) first, then a dash and your note, e.g. '40 dossiers - two more next week'")
        note = after
    if note:
        note = note[1:].strip()  # the separator
        if note[:1].isdigit():
            return _none(f"the first line {_quote(line)} has more than one number at the start: {_HELP}")
    value = amount.scaleb(exponent)
    if match.group("sign"):
        value = -value
    if not value.is_finite() or abs(value) > Decimal(MAX_VALUE):
        return _none(f"{_quote(line)} is out of range: a value is at most {MAX_VALUE:g} in size")
    return Reading(kind="value", value=float(value),
                   note=_clip("\n".join(n for n in (note, note_below) if n), MAX_NOTE))


def read_answer(text: str) -> Reading:
    """The strict grammar, applied to the owner's own text (see docs/email.md, "What a reply can say").

    Only the first non-empty line is the answer (a salutation line such as "Hi Ana," before it is skipped);
    the lines after it are the note. Nothing is searched for further down and nothing is guessed."""
    lines = [line.strip() for line in (text or "").split("\n") if line.strip()]
    if lines and _SALUTATION.match(_normalise(lines[0])) and len(lines[0]) <= 50:
        lines = lines[1:]
    if not lines:
        return _none("there is no text of yours above the quoted mail: " + _HELP)
    line = _normalise(lines[0])
    below = _clip("\n".join(lines[1:]), MAX_NOTE)
    lowered = line.lower()

    if lowered.startswith("snooze"):
        snooze = _SNOOZE.match(line)
        if snooze is None:
            return _none(f"the first line {_quote(line)} is not `snooze`, `snooze 10 days` or `snooze 2 weeks`")
        count = int(snooze.group("count")) if snooze.group("count") else DEFAULT_SNOOZE_DAYS
        unit = (snooze.group("unit") or "d").lower()
        days = count * 7 if unit.startswith("w") else count
        if not 1 <= days <= MAX_SNOOZE_DAYS:
            return _none(f"snooze takes 1 to {MAX_SNOOZE_DAYS} days, not {days}: for example `snooze 2 weeks`")
        note = "\n".join(n for n in (snooze.group("note"), below) if n and n.strip())
        return Reading(kind="snooze", days=days, note=_clip(note, MAX_NOTE))

    if lowered.startswith("blocked"):
        blocked = _BLOCKED.match(line)
        if blocked is None or not (blocked.group("reason") or "").strip():
            return _none("`blocked` needs a reason on the same line, for example `blocked: waiting for legal`")
        return Reading(kind="blocked", reason=_clip(blocked.group("reason"), MAX_REASON), note=below)

    ack = _ACK.match(line)
    if ack is not None:
        note = "\n".join(n for n in (ack.group("note"), below) if n and n.strip())
        return Reading(kind="ack", note=_clip(note, MAX_NOTE))

    value = _read_value(line, below)
    if value is not None:
        return value
    return _none(f"the first line {_quote(line)} is not a number: {_HELP}")


def explain(raw: bytes) -> Explained:
    """How a raw reply is read: parsed with the standard library's modern policy, its own text, then the grammar."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage):  # never with policy.default; keeps mypy honest
        return Explained(own_text=None, reading=_none("the mail could not be parsed"))
    text = own_text(message)
    return Explained(own_text=text, reading=read_answer(text or ""))
