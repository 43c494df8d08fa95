"""The check-in page in a real browser: Playwright driving Debian's Chromium (nothing downloaded), JavaScript off,
a phone-sized viewport, against a real engagement on the time-skipping server with a real worker, the real app
on uvicorn on a free loopback port, and the link taken from a real check-in mail in the SMTP sink.

`ENGAGE_UPDATE_SCREENSHOTS=1` also writes the page's screenshot to docs/img/checkin-page.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from playwright.async_api import Browser, Page, async_playwright
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters.email.headers import message_id_for
from adapters.tokens import check_token, sign_token
from adapters.web import create_app
from devstack.mailsink import MailSink
from devstack.process import free_port
from schemas.events import MetricReported
from schemas.settings import Settings
from schemas.views import ActionView, EngagementStatus
from store import inbound as inbound_store
from store.events import read_log
from tests.conftest import unique_id
from tests.lifecycle import action, into_follow_through, running_worker, scoping, snapshot, start, until
from tests.mailbox import BEN, MAIL_DOMAIN, mail_at_sink, sink_mails
from workflows.engagement import EngagementWorkflow as EW

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "img" / "checkin-page.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
LINK = re.compile(r"http://127\.0\.0\.1:\d+/a/[a-z2-7]+")
ENGAGE = Path(sys.executable).parent / "engage"


async def engage_json(*args: str, temporal_address: str) -> Any:
    """The real `engage ... --json`, without blocking the event loop the worker runs in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env["ENGAGE_TEMPORAL_ADDRESS"] = temporal_address
    proc = await asyncio.create_subprocess_exec(str(ENGAGE), *args, "--json", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def a1(status: EngagementStatus) -> ActionView:
    return next(a for a in status.actions if a.action_id == "A1")


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[str]:
    """The app on uvicorn, in this event loop (the worker's), on a loopback port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            assert not task.done(), "uvicorn exited"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def link_in(mail: EmailMessage) -> str:
    """The check-in page link, from the text part, as an owner would click it."""
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    found = LINK.search(text.get_content())
    assert found, text.get_content()
    return found.group(0)


async def reported(pool: asyncpg.Pool, eid: str) -> list[MetricReported]:
    return [e.event for e in await read_log(pool, eid) if isinstance(e.event, MetricReported)]


async def form_id(page: Page, form: str) -> str:
    return await page.locator(f"#{form} input[name=form_id]").input_value()


async def test_an_owner_answers_on_the_checkin_page_once_and_nothing_else_changes_anything(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink,
) -> None:
    env = time_skipping_env
    port = free_port()
    s = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    eid = unique_id("web")
    async with running_worker(env.client, s, pool) as tq, serving(create_app(s, env.client, pool), port), \
            async_playwright() as pw:
        browser: Browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport=PHONE, device_scale_factor=2, java_script_enabled=False,
                                            is_mobile=True, has_touch=True)
        page = await context.new_page()

        handle = await start(env.client, tq, scoping(eid, cadence="14d", horizon="90d"))
        await into_follow_through(env, handle, date(2027, 2, 11), timedelta(hours=1),
                                  action("A1", *BEN, "Europe/Berlin", date(2027, 5, 31), 0, 200))
        await env.sleep(until(await env.get_current_time(), datetime(2027, 2, 25, 12, tzinfo=UTC)))
        link = link_in(await mail_at_sink(mail_sink, message_id_for(f"{eid}/A1/checkin/1", MAIL_DOMAIN)))

        # A GET (what a mail scanner does) shows the action and changes nothing.
        before = await snapshot(handle, pool, eid)
        response = await page.goto(link)
        assert response is not None and response.status == 200
        headers = response.headers
        assert headers["cache-control"] == "no-store" and headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in headers["content-security-policy"]
        assert await page.locator("h1").inner_text() == "Action A1"
        assert await page.locator("#status").inner_text() == "no data"
        assert "Europe/Berlin" in await page.locator("#next-checkin").inner_text()
        assert await page.locator("svg.metric-chart").count() == 1
        await page.goto(link)
        assert await snapshot(handle, pool, eid) == before, "a GET changed the engagement"

        # A bad value is refused by name (400), nothing reaches the workflow.
        await page.fill("#value", "about forty")
        response_info = page.expect_navigation()
        async with response_info as nav:
            await page.click("#value-form button")
        assert (await nav.value).status == 400
        assert "Value:" in await page.locator("#value-form .error").inner_text()
        assert await snapshot(handle, pool, eid) == before

        # The owner reports a value with a note and sees it confirmed, with the status it gave.
        await page.goto(link)
        first_form = await form_id(page, "value-form")
        await page.fill("#value", "42")
        await page.fill("#note", "The Nordics pipeline is filling up")
        async with page.expect_navigation() as nav:
            await page.click("#value-form button")
        assert (await nav.value).status == 200
        notice = await page.locator("#notice").inner_text()
        assert "Recorded" in notice and "42" in notice and "on track" in notice, notice
        assert await page.locator("#status").inner_text() == "on track"
        assert await page.locator("svg.metric-chart circle.point").count() == 1
        if os.environ.get("ENGAGE_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

        # `engage status --json`, the real command, shows the value.
        status = await engage_json("status", eid, temporal_address=env.client.service_client.config.target_host)
        assert [(x["action_id"], x["last_value"]) for x in status["actions"]] == [("A1", 42)]

        # The same form again (a reload, a back-button resubmit, a double click, twice at once) counts once.
        post = {"form_id": first_form, "value": "42", "note": "The Nordics pipeline is filling up"}
        again = await asyncio.gather(*(context.request.post(f"{link}/value", form=post) for _ in range(3)))
        assert [r.status for r in again] == [200, 200, 200]
        for r in again:
            assert "Already recorded" in await r.text()
        assert [(r.value, r.note, r.source, r.answer_id) for r in await reported(pool, eid)] == [
            (42, "The Nordics pipeline is filling up", "page", f"page/{first_form}")]
        row = await inbound_store.status_of(pool, f"page:{first_form}")
        assert row is not None and (row["status"], row["channel"], row["command"]) == ("applied", "page", "value")
        # One receipt in the owner's inbox, however often the form came: what was recorded, and the link to correct it.
        receipts = [m for m in sink_mails(mail_sink)
                    if m["X-Engage-Kind"] == "answer" and eid in str(m["Message-ID"])
                    and "answered on the check-in page" in m.get_body(preferencelist=("plain",)).get_content()]
        assert len(receipts) == 1 and str(receipts[0]["Subject"]) == "Recorded: Action A1"
        receipt = receipts[0].get_body(preferencelist=("plain",)).get_content()
        assert "Recorded 42 units for 'Action A1': on track" in receipt
        await page.go_back()
        assert await page.locator("#value-form").count() == 1

        # Snooze by two weeks: the next check-in moves by 14 days.
        next_before = a1(await handle.query(EW.status)).next_checkin_at
        assert next_before is not None
        await page.goto(link)
        await page.click("#snooze summary")
        await page.fill("#amount", "2")
        await page.select_option("#unit", "weeks")
        async with page.expect_navigation() as nav:
            await page.click("#snooze-form button")
        assert (await nav.value).status == 200
        assert "Snoozed for 14 days" in await page.locator("#notice").inner_text()
        assert a1(await handle.query(EW.status)).next_checkin_at == next_before + timedelta(days=14)

        # Blocked, with a reason: the page shows it and the consultant's "Blocked:" mail reaches the sink.
        await page.click("#block summary")
        blocked_form = await form_id(page, "blocked-form")
        await page.fill("#reason", "Waiting for legal to sign the Nordic distributor contract")
        async with page.expect_navigation() as nav:
            await page.click("#blocked-form button")
        assert (await nav.value).status == 200
        assert "Reported blocked" in await page.locator("#notice").inner_text()
        assert "legal" in await page.locator("#blocked-reason").inner_text()
        consultant = status["consultant"]["email"]
        blocked = await mail_at_sink(mail_sink, message_id_for(f"{eid}/A1/blocked/page/{blocked_form}", MAIL_DOMAIN))
        assert str(blocked["Subject"]).startswith("Blocked: Action A1") and consultant in str(blocked["To"])

        # A tampered link: the refusal page, 403, nothing changed. An expired one: 410.
        before = await snapshot(handle, pool, eid)
        token = link.rsplit("/", 1)[1]
        middle = len(token) // 2
        tampered = token[:middle] + ("a" if token[middle] != "a" else "b") + token[middle + 1:]
        response = await page.goto(link.replace(token, tampered))
        assert response is not None and response.status == 403
        assert "not valid" in await page.locator("#refusal h1").inner_text()
        assert "reply to the check-in mail" in await page.locator("#refusal").inner_text()
        post = {"form_id": f"value-{'0' * 32}", "value": "150"}
        refused = await context.request.post(f"{link.replace(token, tampered)}/value", form=post)
        assert refused.status == 403
        grant = check_token(token, "link", s.reply_secret, datetime.now(UTC))
        assert grant.scope_id is not None
        expired = sign_token(grant.scope_id, datetime.now(UTC) - timedelta(hours=1), "link", s.reply_secret)
        response = await page.goto(link.replace(token, expired))
        assert response is not None and response.status == 410
        assert await snapshot(handle, pool, eid) == before

        # Temporal unreachable: 503 and what to do, never a traceback.
        nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter)
        other = free_port()
        async with serving(create_app(s, nowhere, pool), other) as down:
            response = await page.goto(f"{down}/a/{token}")
            assert response is not None and response.status == 503
            assert "try" in (await page.locator("#refusal").inner_text()).lower()

        # The target reached: the action closes, and its link shows the history read-only with 410.
        await page.goto(link)
        await page.fill("#value", "200")
        async with page.expect_navigation() as nav:
            await page.click("#value-form button")
        assert "achieved" in await page.locator("#notice").inner_text()
        response = await page.goto(link)
        assert response is not None and response.status == 410
        assert "closed" in await page.locator("#refusal h1").inner_text()
        assert await page.locator("svg.metric-chart circle.point").count() == 2
        assert await page.locator("form").count() == 0
        await browser.close()  # the engagement has completed: its only action reached its target
