"""Authentication-Results from the relay in front of us (adapters/mail_auth.py), on headers shaped as real relays
write them:

- Microsoft 365 (Exchange Online Protection): the form Microsoft documents in "Anti-spam message headers in
  Microsoft 365", with no authserv-id, `action=` on dmarc and the proprietary `compauth`, `;` without a space;
- Google Workspace (mx.google.com): what Gmail's "Show original" shows, one header folded over four lines, with
  Google's comments in the spf result, and an ARC-Authentication-Results above it (a different header: ignored);
- Postfix with OpenDKIM, OpenDMARC and pypolicyd-spf: one header per milter, each with the relay's authserv-id,
  OpenDKIM's key-size comment and quoted header.b, OpenDMARC's (p= dis=) comment, below Postfix's Received line.
"""

# ruff: noqa: E501 - Google folds its header after each result, not at 78 characters: kept as it writes it

from __future__ import annotations

import email
import email.policy
from email.message import Message

import pytest

from adapters.mail_auth import aligned, authentication_error, parse_authentication_results
from schemas.settings import Settings

MICROSOFT = """\
Authentication-Results: spf=pass (sender IP is 40.107.22.61)
 smtp.mailfrom=acme.example; dkim=pass (signature was verified)
 header.d=acme.example;dmarc=pass action=none header.from=acme.example;compauth=pass
 reason=100
Received-SPF: Pass (protection.outlook.com: domain of acme.example designates
 40.107.22.61 as permitted sender) receiver=protection.outlook.com;
 client-ip=40.107.22.61; helo=EUR05-AM6-obe.outbound.protection.outlook.com; pr=C
"""

MICROSOFT_FAIL = """\
Authentication-Results: spf=fail (sender IP is 203.0.113.9)
 smtp.mailfrom=acme.example; dkim=none (message not signed)
 header.d=none;dmarc=fail action=quarantine header.from=acme.example;compauth=fail
 reason=000
"""

GOOGLE = """\
ARC-Authentication-Results: i=1; mx.google.com;
       dkim=pass header.i=@acme.example header.s=google header.b=Zk3fVbq1;
       spf=pass (google.com: domain of ben@acme.example designates 209.85.220.41 as permitted sender) smtp.mailfrom=ben@acme.example;
       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=acme.example
Return-Path: <ben@acme.example>
Received: from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])
        by mx.google.com with SMTPS id a640c23a62f3a-a9a0f2d1b3esor1234567866b.5.2026.11.29.09.14.02
        for <checkins@firm.example>
        (Google Transport Security);
        Sun, 29 Nov 2026 09:14:02 -0800 (PST)
Received-SPF: pass (google.com: domain of ben@acme.example designates 209.85.220.41 as permitted sender) client-ip=209.85.220.41;
Authentication-Results: mx.google.com;
       dkim=pass header.i=@acme.example header.s=google header.b=Zk3fVbq1;
       spf=pass (google.com: domain of ben@acme.example designates 209.85.220.41 as permitted sender) smtp.mailfrom=ben@acme.example;
       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=acme.example
"""

POSTFIX = """\
Received: from mail.acme.example (mail.acme.example [203.0.113.5])
\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
\t(No client certificate requested)
\tby mx.firm.example (Postfix) with ESMTPS id 4ZkQ2Y0Hq7z9sWb
\tfor <checkin+abc@replies.firm.example>; Sun, 29 Nov 2026 18:14:02 +0100 (CET)
Authentication-Results: mx.firm.example; dmarc=pass (p=reject dis=none) header.from=acme.example
Authentication-Results: mx.firm.example;
\tdkim=pass (2048-bit key; unprotected) header.d=acme.example header.i=@acme.example header.b="Q0zRmX1v";
\tdkim-atps=neutral
Authentication-Results: mx.firm.example; spf=pass (sender SPF authorized) smtp.mailfrom=acme.example
"""

SENDER = """\
From: Ben Wu <ben@acme.example>
To: checkin+abc@replies.firm.example
Subject: Re: Check-in 3 for A1
Message-ID: <reply-1@acme.example>

42
"""


def message(headers: str, sender: str = SENDER) -> Message:
    return email.message_from_string(headers + sender, policy=email.policy.default)


def relay(authserv_id: str | None) -> Settings:
    return Settings(_env_file=None, inbound_trusted_relay=authserv_id)  # type: ignore[call-arg]


@pytest.mark.parametrize(("headers", "authserv_id"), [
    (MICROSOFT, "microsoft365"), (GOOGLE, "mx.google.com"), (POSTFIX, "mx.firm.example"),
    (POSTFIX, "MX.Firm.Example."),
])
def test_a_reply_the_trusted_relay_vouches_for_is_accepted(headers: str, authserv_id: str) -> None:
    assert authentication_error(message(headers), relay(authserv_id)) is None


def test_without_a_trusted_relay_nothing_is_checked() -> None:
    assert authentication_error(message(""), relay(None)) is None
    assert authentication_error(message(MICROSOFT_FAIL), relay(None)) is None


def test_a_reply_without_the_relays_vouching_is_refused() -> None:
    # No header at all, or only another server's.
    assert "no Authentication-Results from mx.firm.example" in (authentication_error(message(""), relay(
        "mx.firm.example")) or "")
    assert authentication_error(message(GOOGLE), relay("mx.firm.example")) is not None
    # Microsoft's header names no server: it is not mistaken for a named relay's, and a failure is a failure.
    assert authentication_error(message(MICROSOFT), relay("mx.firm.example")) is not None
    assert "DMARC failed" in (authentication_error(message(MICROSOFT_FAIL), relay("microsoft365")) or "")
    # Google saw a DMARC failure (a message from someone else's server with ben's From).
    failed = GOOGLE.replace("dmarc=pass", "dmarc=fail").replace("spf=pass", "spf=softfail")
    assert "DMARC failed" in (authentication_error(message(failed), relay("mx.google.com")) or "")


def test_only_the_topmost_headers_of_the_relay_count() -> None:
    # The relay says SPF failed and has no DMARC verdict; the sender wrote its own header naming our relay
    # further down, after its own trace headers: that one is not read.
    real = "Authentication-Results: mx.firm.example; spf=fail smtp.mailfrom=acme.example\n"
    forged_below = ("Received: from laptop by mail.evil.example; Sun, 29 Nov 2026 18:00:00 +0100\n"
                    "Authentication-Results: mx.firm.example; dmarc=pass header.from=acme.example\n")
    assert authentication_error(message(real + forged_below), relay("mx.firm.example")) is not None
    # Right below the relay's own header (nothing between), a forged pass cannot outvote the relay's failure.
    real_dmarc = "Authentication-Results: mx.firm.example; dmarc=fail (p=reject) header.from=acme.example\n"
    adjacent = "Authentication-Results: mx.firm.example; dkim=pass header.d=acme.example\n"
    assert "DMARC failed" in (authentication_error(message(real_dmarc + adjacent), relay("mx.firm.example")) or "")


def test_spf_and_dkim_count_only_when_aligned_with_the_from_domain() -> None:
    def verdict(results: str) -> str | None:
        return authentication_error(message(f"Authentication-Results: mx.firm.example; {results}\n"),
                                    relay("mx.firm.example"))

    assert verdict("spf=pass smtp.mailfrom=bounces@mailer.example") is not None  # a bulk sender's envelope
    assert verdict("dkim=pass header.d=mailer.example") is not None  # signed, but by someone else
    assert verdict("dkim=pass header.d=mail.acme.example") is None  # a subdomain of the From domain
    assert verdict("dkim=pass header.i=@acme.example") is None
    assert verdict("spf=pass smtp.mailfrom=ben@acme.example; dkim=fail header.d=acme.example") is None
    assert verdict("dmarc=none header.from=acme.example; spf=neutral smtp.mailfrom=acme.example") is not None
    # Two From addresses: nobody to align with.
    two = message("Authentication-Results: mx.firm.example; dmarc=pass\n", SENDER.replace(
        "From: Ben Wu <ben@acme.example>", "From: ben@acme.example, eve@evil.example"))
    assert "exactly one From" in (authentication_error(two, relay("mx.firm.example")) or "")


def test_the_parser_reads_comments_quotes_and_microsofts_missing_authserv_id() -> None:
    parsed = parse_authentication_results(
        'mx.firm.example 1; dkim=pass (good; (nested) signature) header.d = acme.example header.b="a;b";'
        " spf = softfail smtp.mailfrom=acme.example; none-such")
    assert parsed.authserv_id == "mx.firm.example"
    assert [(r.method, r.result) for r in parsed.results] == [("dkim", "pass"), ("spf", "softfail")]
    assert parsed.results[0].properties == {"header.d": "acme.example", "header.b": "a;b"}
    ms = parse_authentication_results("spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=acme.example;dmarc=pass "
                                      "action=none header.from=acme.example;compauth=pass reason=100")
    assert ms.authserv_id is None and [r.method for r in ms.results] == ["spf", "dmarc", "compauth"]
    assert parse_authentication_results("mx.firm.example; none").results == ()
    assert aligned("acme.example", "ACME.example.") and not aligned("acme.example.evil.test", "acme.example")
