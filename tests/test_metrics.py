"""The worker's Prometheus endpoint: SDK runtime metrics plus the engine's own counters."""

from __future__ import annotations

import re
import urllib.request
from datetime import date, timedelta

import asyncpg
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters.temporal import runtime_for
from devstack.process import free_port
from schemas.events import MessageSent
from schemas.settings import Settings
from schemas.updates import ReportMetric
from schemas.views import EngagementStatus
from store.events import read_log
from tests.conftest import unique_id
from tests.lifecycle import action, into_follow_through, running_worker, scoping, start
from workflows.engagement import EngagementWorkflow as EW


def scrape(port: int) -> dict[str, float]:
    """Sum each metric over its labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if match:
            totals[match.group(1)] = totals.get(match.group(1), 0) + float(match.group(2))
    return totals


async def test_metrics_endpoint_counts_messages_checkins_and_escalations(
        time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool) -> None:
    port = free_port()
    runtime = runtime_for(settings.model_copy(update={"metrics_port": port}))
    client = await Client.connect(time_skipping_env.client.service_client.config.target_host,
                                  data_converter=pydantic_data_converter, runtime=runtime)
    env = time_skipping_env
    eid = unique_id("metrics")
    async with running_worker(client, settings, pool) as tq:
        handle = await start(client, tq, scoping(eid, cadence="8s", horizon="45s", escalate_after_missed=2))
        await into_follow_through(env, handle, date(2027, 2, 10), timedelta(seconds=1),
            action("A1", "Ben Wu", "ben@acme.example", "Europe/Berlin", date(2027, 3, 1), 0, 10),
            action("A2", "Ana Lima", "ana@acme.example", "Europe/Berlin", date(2027, 3, 1), 0, 10))
        await env.sleep(timedelta(seconds=9))
        await handle.execute_update(EW.report_metric, ReportMetric(action_id="A1", value=3))
        # This client has its own runtime (for the metrics), so the environment's clock is skipped explicitly.
        await env.sleep(timedelta(seconds=60))
        final: EngagementStatus = await handle.result()
        metrics = scrape(port)

    sent = [e for e in await read_log(pool, eid) if isinstance(e.event, MessageSent)]
    escalations = sum(a.escalations for a in final.actions)
    assert escalations >= 1
    name = next(n for n in metrics if n.startswith("engage_messages_sent"))
    assert metrics[name] == len(sent)
    assert metrics[next(n for n in metrics if n.startswith("engage_checkins_received"))] == 1
    assert metrics[next(n for n in metrics if n.startswith("engage_escalations"))] == escalations
    assert any(n.startswith("temporal_") for n in metrics), "the SDK's own metrics are served too"


async def test_rejected_replies_are_counted(time_skipping_env: WorkflowEnvironment, settings: Settings,
                                            pool: asyncpg.Pool) -> None:
    from email.message import EmailMessage

    import aiosmtplib

    from adapters.inbound_server import InboundServer

    port = free_port()
    client = await Client.connect(time_skipping_env.client.service_client.config.target_host,
                                  data_converter=pydantic_data_converter,
                                  runtime=runtime_for(settings.model_copy(update={"metrics_port": port})))
    async with InboundServer(settings, client, pool, port=0) as server:
        for forged in ("notatoken", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"):
            msg = EmailMessage()
            msg["From"], msg["Subject"] = "mallory@evil.example", "Re: check-in"
            msg["To"] = f"checkin+{forged}@{settings.inbound_domain}"
            msg["Message-ID"] = f"<{forged}@evil.example>"
            msg.set_content("42")
            try:
                await aiosmtplib.send(msg, hostname="127.0.0.1", port=server.port)
            except aiosmtplib.SMTPRecipientsRefused as exc:  # refused at RCPT, before DATA
                assert [r.code for r in exc.recipients] == [550]
            else:
                raise AssertionError("a forged reply address must be refused")
    metrics = scrape(port)
    assert metrics[next(n for n in metrics if n.startswith("engage_replies_rejected"))] == 2
