"""Writes the reply corpus (tests/replies/*.eml) and its expected readings (tests/replies/expected.yaml).

Each sample is shaped like what one mail client sends when an owner replies to a check-in: its header set,
its MIME structure and transfer encodings, its quote header in the owner's language, and the original check-in
quoted the client's way (rendered from adapters/templates/checkin_request.*.j2, so it carries "snooze 7", "42",
the goal and the last value: numbers that must never be read). Run it again after a template changes:

    .venv/bin/python -m tests.replies.make_corpus
"""

from __future__ import annotations

import base64
import html
import quopri
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from adapters.email.render import render
from schemas.messages import MessageContext, MessageKind, OutboundMessage, Recipient

HERE = Path(__file__).resolve().parent
OWNER = "Ben Wu <ben@acme.example>"
TO = "engage <checkin+TOKEN@engage.localhost>"
ORIGINAL_ID = "<acme-2027-q1.A2.checkin.3.4f1c0a9e2b7d3c61@engage.localhost>"
ANA = ("Ana Silva", "ana@consult.example")


def _original() -> tuple[str, str, str]:
    context = MessageContext(
        client="ACME", engagement_id="acme-2027-q1", recipient_name="Ben Wu", consultant_name="Ana Silva",
        action_id="A2", action_title="Register in Vietnam", metric_name="dossiers filed", unit="dossiers",
        baseline=0, target=120, last_value=36, status="on_track", due=date(2027, 3, 31), checkin_number=3,
        checkin_label="Mon 30 Nov")
    message = OutboundMessage(engagement_id="acme-2027-q1", key="acme-2027-q1/A2/checkin/3",
                              kind=MessageKind.checkin_request, to=Recipient(name="Ben Wu", email="ben@acme.example"),
                              context=context)
    subject, text, body = render(message, "https://engage.example/a/SIGNED")
    return subject, text.strip(), body


SUBJECT, ORIGINAL_TEXT, ORIGINAL_HTML = _original()
ORIGINAL_BODY_HTML = ORIGINAL_HTML.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0]

# ---------------------------------------------------------------------------------------------------------
# Locales: Outlook's header labels and date, Gmail's, Apple Mail's and Thunderbird's quote headers
# ---------------------------------------------------------------------------------------------------------

OUTLOOK = {  # From, Sent, To, Subject, the date as Outlook writes it
    "en": ("From", "Sent", "To", "Subject", "Sunday, November 29, 2026 5:21 PM"),
    "de": ("Von", "Gesendet", "An", "Betreff", "Sonntag, 29. November 2026 17:21"),
    "fr": ("De\u00a0", "Envoyé\u00a0", "À\u00a0", "Objet\u00a0", "dimanche 29 novembre 2026 17:21"),
    "es": ("De", "Enviado", "Para", "Asunto", "domingo, 29 de noviembre de 2026 17:21"),
    "it": ("Da", "Inviato", "A", "Oggetto", "domenica 29 novembre 2026 17:21"),
    "nl": ("Van", "Verzonden", "Aan", "Onderwerp", "zondag 29 november 2026 17:21"),
    "pt": ("De", "Enviado", "Para", "Assunto", "domingo, 29 de novembro de 2026 17:21"),
    "da": ("Fra", "Sendt", "Til", "Emne", "29. november 2026 17:21"),
    "sv": ("Från", "Skickat", "Till", "Ämne", "den 29 november 2026 17:21"),
    "no": ("Fra", "Sendt", "Til", "Emne", "søndag 29. november 2026 17:21"),
    "fi": ("Lähettäjä", "Lähetetty", "Vastaanottaja", "Aihe", "sunnuntai 29. marraskuuta 2026 17.21"),
    "pl": ("Od", "Wysłane", "Do", "Temat", "niedziela, 29 listopada 2026 17:21"),
    "ja": ("差出人", "送信日時", "宛先", "件名", "2026年11月29日 17:21"),
}
GMAIL = {  # as Gmail writes it in the plain-text part (English and German wrapped over two lines, as Gmail does)
    "en": "On Sun, Nov 29, 2026 at 5:21 PM Ana Silva <\nana@consult.example> wrote:",
    "de": "Am So., 29. Nov. 2026 um 17:21 Uhr schrieb Ana Silva <\nana@consult.example>:",
    "fr": "Le dim. 29 nov. 2026 à 17:21, Ana Silva <ana@consult.example> a écrit :",
    "es": "El dom, 29 nov 2026 a las 17:21, Ana Silva (<ana@consult.example>)\nescribió:",
    "it": "Il giorno dom 29 nov 2026 alle ore 17:21 Ana Silva <ana@consult.example>\nha scritto:",
    "nl": "Op zo 29 nov. 2026 om 17:21 schreef Ana Silva <ana@consult.example>:",
    "pt": "Em dom., 29 de nov. de 2026 às 17:21, Ana Silva <ana@consult.example>\nescreveu:",
    "da": "Den søn. 29. nov. 2026 kl. 17.21 skrev Ana Silva <ana@consult.example>:",
    "sv": "Den sön 29 nov. 2026 kl 17:21 skrev Ana Silva <ana@consult.example>:",
    "no": "søn. 29. nov. 2026 kl. 17:21 skrev Ana Silva <ana@consult.example>:",
    "fi": "su 29.11.2026 klo 17.21 Ana Silva (ana@consult.example) kirjoitti:",
    "pl": "W dniu 29.11.2026 o 17:21 Ana Silva <ana@consult.example> napisał(a):",
    "ja": "2026年11月29日(日) 17:21 Ana Silva <ana@consult.example>:",
}
APPLE = {
    "en": "On 29 Nov 2026, at 17:21, Ana Silva <ana@consult.example> wrote:",
    "de": "Am 29.11.2026 um 17:21 schrieb Ana Silva <ana@consult.example>:",
    "fr": "Le 29 nov. 2026 à 17:21, Ana Silva <ana@consult.example> a écrit :",
    "es": "El 29 nov 2026, a las 17:21, Ana Silva <ana@consult.example> escribió:",
    "it": "Il giorno 29 nov 2026, alle ore 17:21, Ana Silva <ana@consult.example> ha scritto:",
    "nl": "Op 29 nov 2026 om 17:21 heeft Ana Silva <ana@consult.example> het volgende geschreven:",
    "pt": "Em 29 de nov. de 2026, à(s) 17:21, Ana Silva <ana@consult.example> escreveu:",
    "da": "Den 29. nov. 2026 kl. 17.21 skrev Ana Silva <ana@consult.example>:",
    "sv": "29 nov. 2026 kl. 17:21 skrev Ana Silva <ana@consult.example>:",
    "no": "29. nov. 2026 kl. 17:21 skrev Ana Silva <ana@consult.example>:",
    "fi": "Ana Silva <ana@consult.example> kirjoitti 29.11.2026 kello 17.21:",
    "pl": "Wiadomość napisana przez Ana Silva <ana@consult.example> w dniu 29.11.2026, o godz. 17:21:",
}
THUNDERBIRD = {
    "en": "On 29/11/2026 17:21, Ana Silva wrote:",
    "de": "Am 29.11.26 um 17:21 schrieb Ana Silva:",
    "fr": "Le 29/11/2026 à 17:21, Ana Silva a écrit\u00a0:",
    "es": "El 29/11/26 a las 17:21, Ana Silva escribió:",
    "it": "Il 29/11/26 17:21, Ana Silva ha scritto:",
    "nl": "Op 29-11-2026 om 17:21 schreef Ana Silva:",
    "pt": "Em 29/11/2026 17:21, Ana Silva escreveu:",
    "da": "Den 29.11.2026 kl. 17.21 skrev Ana Silva:",
    "sv": "Den 2026-11-29 kl. 17:21, skrev Ana Silva:",
    "no": "Den 29.11.2026 17:21, skrev Ana Silva:",
    "fi": "29.11.2026 klo 17.21 Ana Silva kirjoitti:",
    "pl": "W dniu 29.11.2026 o 17:21, Ana Silva pisze:",
    "ja": "2026/11/29 17:21, Ana Silva wrote:",
}
MOBILE_SIGNATURE = {
    "en": "Sent from my iPhone", "de": "Von meinem iPhone gesendet", "fr": "Envoyé de mon iPhone",
    "es": "Enviado desde mi iPhone", "it": "Inviato da iPhone", "nl": "Verstuurd vanaf mijn iPhone",
    "pt": "Enviado do meu iPhone", "da": "Sendt fra min iPhone", "sv": "Skickat från min iPhone",
    "no": "Sendt fra min iPhone", "fi": "Lähetetty iPhonesta", "pl": "Wysłane z iPhone'a",
}

# ---------------------------------------------------------------------------------------------------------
# MIME
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Part:
    subtype: str  # plain / html
    text: str
    charset: str = "utf-8"
    cte: str = "quoted-printable"
    params: dict[str, str] = field(default_factory=dict)

    def render(self) -> bytes:
        data = self.text.replace("\n", "\r\n").encode(self.charset)
        if self.cte == "quoted-printable":
            body = quopri.encodestring(data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        elif self.cte == "base64":
            body = base64.encodebytes(data).replace(b"\n", b"\r\n")
        else:
            body = data
        extra = "".join(f"; {k}={v}" for k, v in self.params.items())
        head = (f'Content-Type: text/{self.subtype}; charset="{self.charset}"{extra}\r\n'
                f"Content-Transfer-Encoding: {self.cte}\r\n\r\n")
        return head.encode("ascii") + body.rstrip(b"\r\n") + b"\r\n"


def alternative(boundary: str, *parts: Part) -> bytes:
    out = f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part.render()
    return out + f"--{boundary}--\r\n".encode()


def message(name: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    common = [("From", OWNER), ("To", TO), ("Subject", f"Re: {SUBJECT}"),
              ("Date", "Mon, 30 Nov 2026 09:14:07 +0100"),
              ("Message-ID", f"<{name}.reply@corpus.acme.example>"),
              ("In-Reply-To", ORIGINAL_ID), ("References", ORIGINAL_ID), ("MIME-Version", "1.0")]
    lines = "".join(f"{k}: {v}\r\n" for k, v in common + headers)
    return lines.encode("utf-8") + body


def quoted(text: str, prefix: str = "> ") -> str:
    return "\n".join((prefix + line).rstrip() if line else prefix.rstrip() for line in text.split("\n"))


def html_lines(text: str) -> str:
    return "<br>\n".join(html.escape(line) for line in text.split("\n"))


# ---------------------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------------------

OUTLOOK_HEADERS = [
    ("Thread-Topic", SUBJECT), ("Thread-Index", "AQHbQmT3n0ZJc1xWmUqG8m1l4nKoQQ=="),
    ("Accept-Language", "en-US"), ("X-MS-Has-Attach", ""), ("X-MS-TNEF-Correlator", ""),
    ("x-ms-exchange-organization-scl", "-1"), ("x-ms-publictraffictype", "Email"),
]


def outlook_header_block(lang: str) -> str:
    sender, sent, to, subj, when = OUTLOOK[lang]
    return (f"{sender}: Ana Silva <ana@consult.example>\n{sent}: {when}\n{to}: Ben Wu <ben@acme.example>\n"
            f"{subj}: {SUBJECT}")


def outlook_desktop(answer: str, lang: str = "en", charset: str = "windows-1252", html_only: bool = False,
                    original_message: bool = False) -> tuple[list[tuple[str, str]], bytes]:
    """Outlook 365 for Windows: the original below a header block with no `>`; the HTML is Word's, with the
    border-top div over the header. Plain parts have no rule unless `original_message` (older Outlook)."""
    rule = "-----Original Message-----\n" if original_message else ""
    plain = f"{answer}\n\n{rule}{outlook_header_block(lang)}\n\n{ORIGINAL_TEXT}\n"
    sender, sent, to, subj, when = OUTLOOK[lang]
    word = (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:word">'
        '<head><meta http-equiv="Content-Type" content="text/html; charset=' + charset + '">'
        '<meta name="Generator" content="Microsoft Word 15 (filtered medium)"><style><!-- p.MsoNormal '
        '{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif;} --></style></head>'
        '<body lang="' + lang.upper() + '" link="#0563C1" vlink="#954F72"><div class="WordSection1">'
        + "".join(f'<p class="MsoNormal">{html.escape(line) or "<o:p>&nbsp;</o:p>"}<o:p></o:p></p>'
                  for line in answer.split("\n"))
        + '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        f'<p class="MsoNormal"><b>{sender}:</b> Ana Silva &lt;ana@consult.example&gt; <br><b>{sent}:</b> {when}'
        f'<br><b>{to}:</b> Ben Wu &lt;ben@acme.example&gt;<br><b>{subj}:</b> {html.escape(SUBJECT)}</p></div>'
        f'<p class="MsoNormal"><o:p>&nbsp;</o:p></p>{ORIGINAL_BODY_HTML}</div></body></html>')
    headers = OUTLOOK_HEADERS + [("Content-Language", {"en": "en-US"}.get(lang, f"{lang}-{lang.upper()}"))]
    if html_only:
        return headers, Part("html", word, charset).render()
    return headers, alternative("_000_AM0PR02MB56994E1B2D7C8A9F0B3C4D5EAM0PR02MB5699eurp_",
                                Part("plain", plain, charset), Part("html", word, charset))


def outlook_web(answer: str, lang: str = "en", charset: str = "iso-8859-1",
                mobile: str | None = None) -> tuple[list[tuple[str, str]], bytes]:
    """Outlook on the web, and Outlook for iOS/Android (`mobile`): the rule, then the header block; HTML with
    appendonsend and divRplyFwdMsg."""
    sender, sent, to, subj, when = OUTLOOK[lang]
    get = f"\n\nGet Outlook for {mobile}<https://aka.ms/o0ukef>" if mobile else ""
    plain = (f"{answer}{get}\n________________________________\n{outlook_header_block(lang)}\n\n"
             f"{ORIGINAL_TEXT}\n")
    answer_html = "".join(f'<div style="font-family: Aptos, sans-serif; font-size: 12pt;">'
                          f'{html.escape(line) or "<br>"}</div>' for line in answer.split("\n"))
    get_html = (f'<div id="ms-outlook-mobile-signature"><div><br></div>Get <a href="https://aka.ms/o0ukef">'
                f"Outlook for {mobile}</a></div>") if mobile else ""
    body = (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
            '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style></head>'
            f'<body dir="ltr">{answer_html}{get_html}<div id="appendonsend"></div>'
            '<hr style="display:inline-block;width:98%" tabindex="-1">'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" '
            f'color="#000000"><b>{sender}:</b> Ana Silva &lt;ana@consult.example&gt;<br><b>{sent}:</b> {when}<br>'
            f'<b>{to}:</b> Ben Wu &lt;ben@acme.example&gt;<br><b>{subj}:</b> {html.escape(SUBJECT)}</font>'
            f'<div>&nbsp;</div></div><div>{ORIGINAL_BODY_HTML}</div></body></html>')
    headers = OUTLOOK_HEADERS + [("Content-Language", f"{lang}-{lang.upper()}" if lang != "en" else "en-US")]
    return headers, alternative("_000_DB9PR08MB6588A1C2B3D4E5F6A7B8C9D0DB9PR08MB6588eurp_",
                                Part("plain", plain, charset), Part("html", body, charset))


def gmail(answer: str, lang: str = "en", charset: str = "UTF-8", cte: str = "quoted-printable",
          mobile: bool = False) -> tuple[list[tuple[str, str]], bytes]:
    """Gmail web (and the Gmail app, `mobile`): `>` quotes under "On ... wrote:", HTML gmail_quote."""
    header = GMAIL[lang]
    plain = f"{answer}\n\n{header}\n\n{quoted(ORIGINAL_TEXT)}\n"
    div = "auto" if mobile else "ltr"
    answer_html = f'<div dir="{div}">' + "".join(
        f"<div>{html.escape(line) or '<br>'}</div>" for line in answer.split("\n")) + "</div>"
    body = (f'{answer_html}<br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
            f'{html.escape(header.replace(chr(10), " "))}<br></div><blockquote class="gmail_quote" style="margin:0px'
            f' 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">{ORIGINAL_BODY_HTML}'
            "</blockquote></div>\n")
    return [], alternative("000000000000a1b2c3d4e5f60718", Part("plain", plain, charset, cte),
                           Part("html", body, charset, cte))


def apple_mail(answer: str, lang: str = "en", ios: bool = False) -> tuple[list[tuple[str, str]], bytes]:
    """Apple Mail: macOS sends plain + HTML with blockquote type=cite; iOS plain text with the header quoted
    too and "Sent from my iPhone"."""
    header = APPLE[lang]
    if ios:
        text = f"{answer}\n\n{MOBILE_SIGNATURE[lang]}\n\n{quoted(header)}\n>\n{quoted(ORIGINAL_TEXT)}\n"
        return ([("X-Mailer", "iPhone Mail (22B91)"), ("Content-Language", lang)],
                Part("plain", text, "utf-8").render())
    plain = f"{answer}\n\n{header}\n\n{quoted(ORIGINAL_TEXT)}\n\n"
    body = ('<html aria-label="message body"><head><meta http-equiv="content-type" content="text/html; '
            'charset=utf-8"></head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; '
            'line-break: after-white-space;">' + "".join(
                f"<div>{html.escape(line) or '<br>'}</div>" for line in answer.split("\n"))
            + f'<div><br><blockquote type="cite"><div>{html.escape(header)}</div><br '
            f'class="Apple-interchange-newline"><div>{ORIGINAL_BODY_HTML}</div></blockquote></div><br></body></html>')
    return ([("X-Mailer", "Apple Mail (2.3826.200.121)")],
            alternative("Apple-Mail=_5B1E3A2C-7D4F-4E8A-9C1B-2F3D4E5F6A7B", Part("plain", plain, "utf-8"),
                        Part("html", body, "utf-8")))


def thunderbird(answer: str, lang: str = "en", bottom: bool = False, as_html: bool = False,
                charset: str = "UTF-8") -> tuple[list[tuple[str, str]], bytes]:
    """Thunderbird: format=flowed plain text, `>` quotes; top- or bottom-posted; HTML with moz-cite-prefix."""
    header = THUNDERBIRD[lang]
    agent = [("User-Agent", "Mozilla Thunderbird"), ("Content-Language", lang)]
    if as_html:
        mine = "".join(f"<p>{html.escape(line)}</p>" if line else "<br>" for line in answer.split("\n"))
        cite = (f'<div class="moz-cite-prefix">{html.escape(header)}<br></div><blockquote type="cite" '
                f'cite="mid:{ORIGINAL_ID[1:-1]}">{ORIGINAL_BODY_HTML}</blockquote>')
        body = ('<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
                f"</head><body>{cite + mine if bottom else mine + cite}</body></html>")
        return agent, Part("html", body, charset, "8bit").render()
    quote = f"{header}\n{quoted(ORIGINAL_TEXT)}\n"
    text = f"{quote}\n{answer}\n" if bottom else f"{answer}\n\n{quote}"
    # format=flowed: a long line is sent as several lines ending in a space
    flowed = "\n".join(_flow(line) for line in text.split("\n"))
    return agent, Part("plain", flowed, charset, "8bit", {"format": "flowed"}).render()


def _flow(line: str, width: int = 72) -> str:
    if len(line) <= width or line == "-- ":
        return line
    prefix = "> " if line.startswith(">") else ""
    words, out, current = line[len(prefix):].split(" "), [], ""
    for word in words:
        if current and len(prefix + current + word) > width:
            out.append(prefix + current)
            current = ""
        current += word + " "
    out.append(prefix + current.rstrip())
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------
# The samples
# ---------------------------------------------------------------------------------------------------------

Built = tuple[list[tuple[str, str]], bytes]


@dataclass
class Sample:
    name: str
    build: Callable[[], Built]
    expected: dict[str, Any]
    source: str


def V(value: float) -> dict[str, Any]:  # noqa: N802 - reads as the expectation it is
    return {"kind": "value", "value": value}


def S(days: int) -> dict[str, Any]:  # noqa: N802
    return {"kind": "snooze", "days": days}


def B(reason: str) -> dict[str, Any]:  # noqa: N802
    return {"kind": "blocked", "reason": reason}


ACK: dict[str, Any] = {"kind": "ack"}
NONE: dict[str, Any] = {"kind": "none"}
SIG_PHONE = "Ben Wu\nHead of Operations, ACME Vietnam\nMobile: +84 912 345 678"

SAMPLES = [
    # Outlook desktop, plain + HTML, the original below with no `>` (and its "snooze 7")
    Sample("outlook-desktop-en", lambda: outlook_desktop("42"), V(42),
           "Outlook 365 desktop (Windows), plain+HTML, English"),
    Sample("outlook-desktop-de-decimal", lambda: outlook_desktop("1.250,5\n\nViele Grüße\nBen", "de"), V(1250.5),
           "Outlook 365 desktop, plain+HTML, German locale, windows-1252"),
    Sample("outlook-desktop-fr", lambda: outlook_desktop("42,5", "fr"), V(42.5),
           "Outlook 365 desktop, French locale ('De :' with no-break spaces)"),
    Sample("outlook-desktop-es", lambda: outlook_desktop("Hola Ana,\n\n37\n\nSaludos,\nBen", "es"), V(37),
           "Outlook 365 desktop, Spanish locale, salutation line"),
    Sample("outlook-desktop-it-blocked", lambda: outlook_desktop("blocked: in attesa del notaio", "it"),
           B("in attesa del notaio"), "Outlook 365 desktop, Italian locale"),
    Sample("outlook-desktop-nl-unit", lambda: outlook_desktop("40 dossiers", "nl"), V(40),
           "Outlook 365 desktop, Dutch locale, value with unit word"),
    Sample("outlook-desktop-pt-spaces", lambda: outlook_desktop("1 250", "pt"), V(1250),
           "Outlook 365 desktop, Portuguese locale, space as thousands separator"),
    Sample("outlook-desktop-sv", lambda: outlook_desktop("12", "sv"), V(12), "Outlook 365 desktop, Swedish locale"),
    Sample("outlook-desktop-no-negative", lambda: outlook_desktop("\u22123", "no", charset="utf-8"), V(-3),
           "Outlook 365 desktop, Norwegian locale, U+2212 minus, UTF-8"),
    Sample("outlook-desktop-fi-k", lambda: outlook_desktop("40k", "fi"), V(40000),
           "Outlook 365 desktop, Finnish locale"),
    Sample("outlook-desktop-pl-snooze", lambda: outlook_desktop("snooze 10 days", "pl", charset="utf-8"), S(10),
           "Outlook 365 desktop, Polish locale, UTF-8"),
    Sample("outlook-desktop-da-done", lambda: outlook_desktop("Done", "da", charset="iso-8859-1"), ACK,
           "Outlook 365 desktop, Danish locale, iso-8859-1"),
    Sample("outlook-desktop-phone-signature", lambda: outlook_desktop(f"42\n\n{SIG_PHONE}"), V(42),
           "Outlook 365 desktop, signature with a phone number and no delimiter"),
    Sample("outlook-desktop-signature-only",
           lambda: outlook_desktop(f"Hi Ana,\n\n{SIG_PHONE}"), NONE,
           "Outlook 365 desktop, the owner sent only a greeting and a signature with a phone number"),
    Sample("outlook-desktop-original-message", lambda: outlook_desktop("snooze 2 weeks", "en", original_message=True),
           S(14), "Outlook 2016 desktop, plain, '-----Original Message-----' separator"),
    Sample("outlook-desktop-ambiguous", lambda: outlook_desktop("40.000 €", "de"), NONE,
           "Outlook 365 desktop, German locale: '40.000' could be 40000 or 40 (refused, never guessed)"),
    Sample("outlook-desktop-ja", lambda: outlook_desktop("42", "ja", charset="iso-2022-jp"), V(42),
           "Outlook 365 desktop, Japanese locale, ISO-2022-JP"),
    # Outlook desktop, HTML only
    Sample("outlook-html-only-en", lambda: outlook_desktop("40", html_only=True), V(40),
           "Outlook 365 desktop, HTML-only reply (Word HTML, border-top div)"),
    Sample("outlook-html-only-de-none", lambda: outlook_desktop("Hallo Ana,\n\nich melde mich morgen.\n\nBen", "de",
                                                                html_only=True), NONE,
           "Outlook 365 desktop, HTML-only, German: no answer in the text"),
    Sample("outlook-html-only-fr-grouped", lambda: outlook_desktop("1,250", "fr", html_only=True), V(1250),
           "Outlook 365 desktop, HTML-only, French locale"),
    # Outlook on the web and mobile
    Sample("outlook-web-en-million", lambda: outlook_web("1.2M"), V(1200000), "Outlook on the web (OWA), plain+HTML"),
    Sample("outlook-web-de-percent", lambda: outlook_web("40%", "de"), V(40), "Outlook on the web, German locale"),
    Sample("outlook-web-es-snooze", lambda: outlook_web("snooze", "es"), S(7), "Outlook on the web, Spanish locale"),
    Sample("outlook-web-nl-none", lambda: outlook_web("Zie bijlage", "nl"), NONE,
           "Outlook on the web, Dutch locale: 'see attachment', no answer"),
    Sample("outlook-ios-en", lambda: outlook_web("42", mobile="iOS", charset="utf-8"), V(42),
           "Outlook for iOS, plain+HTML, 'Get Outlook for iOS'"),
    Sample("outlook-android-de", lambda: outlook_web("36", "de", mobile="Android", charset="utf-8"), V(36),
           "Outlook for Android, German locale"),
    Sample("outlook-ios-only-signature", lambda: outlook_web("", mobile="iOS", charset="utf-8"), NONE,
           "Outlook for iOS, sent with nothing written"),
    Sample("outlook-ios-done", lambda: outlook_web("Done.", "it", mobile="iOS", charset="utf-8"), ACK,
           "Outlook for iOS, Italian locale, acknowledgement"),
    # Gmail
    Sample("gmail-en-note", lambda: gmail("40 - no need to snooze me"), V(40),
           "Gmail web, plain+HTML, English, quote header wrapped over two lines"),
    Sample("gmail-de-salutation", lambda: gmail("Hallo Ana,\n\n1.250,5\n\nViele Grüße\nBen", "de"), V(1250.5),
           "Gmail web, German, header wrapped over two lines"),
    Sample("gmail-fr", lambda: gmail("Bonjour,\n\n42,5", "fr"), V(42.5), "Gmail web, French"),
    Sample("gmail-es-snooze-weeks", lambda: gmail("snooze 3 weeks", "es"), S(21), "Gmail web, Spanish"),
    Sample("gmail-it-read", lambda: gmail("read", "it"), ACK, "Gmail web, Italian"),
    Sample("gmail-nl-percent", lambda: gmail("40%", "nl"), V(40), "Gmail web, Dutch"),
    Sample("gmail-pt-minus", lambda: gmail("\u22123", "pt"), V(-3), "Gmail web, Portuguese, U+2212 minus"),
    Sample("gmail-da-none", lambda: gmail("", "da"), NONE,
           "Gmail web, Danish quote header above no number (the 29 in it is not a value)"),
    Sample("gmail-sv-million", lambda: gmail("1.2M", "sv"), V(1200000), "Gmail web, Swedish"),
    Sample("gmail-no", lambda: gmail("88", "no"), V(88), "Gmail web, Norwegian"),
    Sample("gmail-fi-k", lambda: gmail("40k", "fi"), V(40000), "Gmail web, Finnish"),
    Sample("gmail-pl-blocked", lambda: gmail("blocked - czekamy na zgodę zarządu", "pl"),
           B("czekamy na zgodę zarządu"), "Gmail web, Polish"),
    Sample("gmail-ja-fullwidth", lambda: gmail("４２", "ja", charset="ISO-2022-JP", cte="7bit"), V(42),
           "Gmail web, Japanese, ISO-2022-JP, full-width digits"),
    Sample("gmail-en-guess", lambda: gmail("about forty, I think"), NONE,
           "Gmail web, English, words instead of a number"),
    Sample("gmail-en-ambiguous", lambda: gmail("1.250"), NONE, "Gmail web, '1.250' is refused, never guessed"),
    Sample("gmail-en-bad-grouping", lambda: gmail("1,25,0"), NONE, "Gmail web, '1,25,0' is refused"),
    Sample("gmail-mobile-en", lambda: gmail("42", cte="base64", mobile=True), V(42), "Gmail for Android, base64"),
    Sample("gmail-mobile-de-none", lambda: gmail("Mache ich morgen", "de", cte="base64", mobile=True), NONE,
           "Gmail for iOS, German, no answer"),
    Sample("gmail-en-blocked-no-reason", lambda: gmail("blocked"), NONE, "Gmail web, `blocked` without a reason"),
    Sample("gmail-en-snooze-too-long", lambda: gmail("snooze 400 days"), NONE, "Gmail web, snooze beyond a year"),
    # Apple Mail
    Sample("apple-mac-en-snooze", lambda: apple_mail("snooze 2 weeks"), S(14), "Apple Mail (macOS), plain+HTML"),
    Sample("apple-mac-de-none", lambda: apple_mail("", "de"), NONE,
           "Apple Mail (macOS), German quote header 'Am 29.11.2026 um 17:21 schrieb' above no number"),
    Sample("apple-mac-fr-unit", lambda: apple_mail("40 dossiers", "fr"), V(40), "Apple Mail (macOS), French"),
    Sample("apple-mac-nl-done", lambda: apple_mail("done", "nl"), ACK, "Apple Mail (macOS), Dutch"),
    Sample("apple-mac-sv-nbsp", lambda: apple_mail("1\u00a0250", "sv"), V(1250),
           "Apple Mail (macOS), Swedish, no-break space as thousands separator"),
    Sample("apple-mac-pl", lambda: apple_mail("17", "pl"), V(17), "Apple Mail (macOS), Polish quote header"),
    Sample("apple-ios-en", lambda: apple_mail("42", ios=True), V(42), "Apple Mail (iOS), 'Sent from my iPhone'"),
    Sample("apple-ios-es-blocked", lambda: apple_mail("blocked: esperando al banco", "es", ios=True),
           B("esperando al banco"), "Apple Mail (iOS), Spanish"),
    Sample("apple-ios-it-none", lambda: apple_mail("", "it", ios=True), NONE,
           "Apple Mail (iOS), Italian, only 'Inviato da iPhone'"),
    Sample("apple-ios-pt-decimal", lambda: apple_mail("12,5", "pt", ios=True), V(12.5), "Apple Mail (iOS), Portuguese"),
    Sample("apple-ios-fi", lambda: apple_mail("64", "fi", ios=True), V(64), "Apple Mail (iOS), Finnish"),
    Sample("apple-ios-da-thin-space", lambda: apple_mail("1\u2009250,5", "da", ios=True), V(1250.5),
           "Apple Mail (iOS), Danish, thin space grouping"),
    # Thunderbird
    Sample("thunderbird-en-bottom", lambda: thunderbird("42\n\n-- \nBen Wu\n+84 912 345 678", bottom=True), V(42),
           "Thunderbird 128, plain format=flowed, bottom-posted, signature with a phone number"),
    Sample("thunderbird-de-bottom-snooze", lambda: thunderbird("snooze 10 days", "de", bottom=True), S(10),
           "Thunderbird 128, German, bottom-posted"),
    Sample("thunderbird-fr-top", lambda: thunderbird("1 250,5", "fr", charset="iso-8859-1"), V(1250.5),
           "Thunderbird 128, French, top-posted, iso-8859-1"),
    Sample("thunderbird-pl-html-bottom", lambda: thunderbird("40", "pl", bottom=True, as_html=True), V(40),
           "Thunderbird 128, HTML only (moz-cite-prefix), Polish, bottom-posted"),
    Sample("thunderbird-fi-html-top", lambda: thunderbird("-7", "fi", as_html=True), V(-7),
           "Thunderbird 128, HTML only, Finnish, top-posted"),
    Sample("thunderbird-no-bottom-none", lambda: thunderbird("", "no", bottom=True), NONE,
           "Thunderbird 128, Norwegian, sent without writing anything"),
    Sample("thunderbird-nl-en-dash", lambda: thunderbird("\u20132", "nl", bottom=True), V(-2),
           "Thunderbird 128, Dutch, bottom-posted, en dash as minus"),
    Sample("thunderbird-it-bottom-long-note",
           lambda: thunderbird("55 - the last five were filed on Friday afternoon after the notary finally signed "
                               "the power of attorney", "it", bottom=True), V(55),
           "Thunderbird 128, Italian, bottom-posted, a note long enough to be flowed over lines"),
]


def forwarded(answer: str, intro: str, lang: str = "en") -> Built:
    """A reply that carries a forwarded message below the owner's text (numbers in it are someone else's)."""
    colleague = ("Hi Ben,\n\nWe filed 55 dossiers this week, 3 more on Monday.\n\nLinh\n"
                 "Mobile: +84 90 123 4567")
    block = (f"{intro}\nFrom: Linh Tran <linh@acme.example>\nDate: Fri, Nov 27, 2026 at 4:02 PM\n"
             f"Subject: dossiers\nTo: Ben Wu <ben@acme.example>\n\n\n{colleague}\n")
    plain = f"{answer}\n\n{block}\n{GMAIL[lang]}\n\n{quoted(ORIGINAL_TEXT)}\n"
    return [], Part("plain", plain, "UTF-8", "quoted-printable").render()


SAMPLES += [
    Sample("forward-gmail-en", lambda: forwarded("42", "---------- Forwarded message ---------"), V(42),
           "Gmail web, a forwarded message below the answer"),
    Sample("forward-gmail-en-none", lambda: forwarded("", "---------- Forwarded message ---------"), NONE,
           "Gmail web, only a forwarded message (its 55 is not the owner's answer)"),
    Sample("forward-apple-en", lambda: forwarded("36 dossiers", "Begin forwarded message:"), V(36),
           "Apple Mail, 'Begin forwarded message:' below the answer"),
    Sample("forward-thunderbird-de-none",
           lambda: forwarded("", "-------- Weitergeleitete Nachricht --------", "de"), NONE,
           "Thunderbird, German forwarded block and nothing of the owner's"),
    Sample("forward-outlook-de-original",
           lambda: forwarded("snooze 2 weeks", "-----Ursprüngliche Nachricht-----", "de"), S(14),
           "Outlook 2016, German '-----Ursprüngliche Nachricht-----' below the answer"),
]


def main() -> None:
    expected: dict[str, dict[str, Any]] = {}
    names = set()
    for sample in SAMPLES:
        assert sample.name not in names, sample.name
        names.add(sample.name)
        headers, body = sample.build()
        (HERE / f"{sample.name}.eml").write_bytes(message(sample.name, headers, body))
        expected[f"{sample.name}.eml"] = {**sample.expected, "source": sample.source}
    with (HERE / "expected.yaml").open("w", encoding="utf-8") as out:
        out.write("# The reading each corpus file must give (tests/test_reply_reading.py); written by\n"
                  "# tests/replies/make_corpus.py. source: the client and locale whose shape the sample copies.\n")
        yaml.safe_dump(expected, out, allow_unicode=True, sort_keys=True, width=120)
    print(f"{len(SAMPLES)} samples written to {HERE}")


if __name__ == "__main__":
    main()
