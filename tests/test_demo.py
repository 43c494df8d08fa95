"""`engage demo` (what `make demo` runs): one whole engagement on a stack it starts itself, within 3 minutes."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import os
import re
import sys
import time
from pathlib import Path

import psutil

from devstack.process import free_port, port_is_free

ENGAGE = str(Path(sys.executable).parent / "engage")


async def test_demo_runs_one_engagement_to_closed_within_three_minutes(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("temporal", "ui", "postgres", "smtp", "caldav", "inbound", "web")}
    args = [ENGAGE, "demo", "--no-keep-running", "--data-dir", str(tmp_path / "var")]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(ENGAGE_TEMPORAL_ADDRESS=f"127.0.0.1:{ports['temporal']}", COLUMNS="160")
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    elapsed = time.monotonic() - began
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert elapsed <= 180, f"the demo took {elapsed:.0f} s"
    assert "Demo finished" in text, text[-2000:]
    assert "closed" in text, "the last view shows the engagement closed"
    assert "achieved" in text, "the owner who answers reaches the target"
    assert re.search(r"escalat", text), "the silent owner is escalated"
    # One owner answers on the check-in page, the other by a reply; the demo prints both answer mails.
    assert "Answer mail to Ben Wu <ben@acme.example> (after the check-in page): Recorded: Launch the self-serve" in text
    assert "Answer mail to Ana Lima <ana@acme.example> (after a reply): Recorded: Cut onboarding time" in text
    assert "Recorded 19 days for 'Cut onboarding time'" in text
    reports = list((tmp_path / "var" / "reports").glob("demo-*.html"))
    assert len(reports) == 1 and "<svg" in reports[0].read_text()
    mails = list((tmp_path / "var" / "mail").glob("*.eml"))
    assert len(mails) >= 10
    # The invitation carries the agenda as held, day by day with clock times (issue 16).
    bodies = [_plain_text(m) for m in mails]
    invitations = [b for b in bodies if "The calendar invitation is attached" in b]
    assert invitations and all(re.search(r"\d\d:\d\d-\d\d:\d\d Opening", b) for b in invitations), invitations[:1]
    # Everything it started is stopped again.
    time.sleep(0.5)
    assert all(port_is_free(p) for p in ports.values())
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]


def _plain_text(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""
