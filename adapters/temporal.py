"""The Temporal client, configured from settings: one data converter, TLS and API keys for Temporal Cloud."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RPCError, TLSConfig

from schemas.settings import Settings


class TemporalUnavailable(RuntimeError):
    def __init__(self, settings: Settings, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach Temporal at {settings.temporal_address} (ENGAGE_TEMPORAL_ADDRESS): "
            f"{type(cause).__name__}; start the embedded stack with `engage dev`"
        )


def tls_config(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert or settings.temporal_tls_key or settings.temporal_tls_ca:
        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return TLSConfig(
            client_cert=read(settings.temporal_tls_cert),
            client_private_key=read(settings.temporal_tls_key),
            server_root_ca_cert=read(settings.temporal_tls_ca),
        )
    # An API key (Temporal Cloud) always travels over TLS.
    return settings.temporal_tls or settings.temporal_api_key is not None


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            tls=tls_config(settings),
            api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
            runtime=runtime or runtime_for(settings),
        )
    except (RuntimeError, RPCError, OSError) as exc:
        raise TemporalUnavailable(settings, exc) from exc


def engagement_workflow_id(engagement_id: str) -> str:
    """The workflow id of an engagement; its actions' follow-throughs are `follow_through_workflow_id`."""
    return f"engagement/{engagement_id}"


def runtime_for(settings: Settings) -> Runtime:
    """The SDK runtime: its core's log lines go through Python logging (stderr), never stdout, where `--json`
    output must stand alone; with ENGAGE_METRICS_PORT it also serves Prometheus metrics (the SDK's and the
    engine's own counters)."""
    return _runtime(settings.metrics_host, settings.metrics_port)


@lru_cache(maxsize=4)
def _runtime(metrics_host: str, metrics_port: int | None) -> Runtime:
    metrics = (PrometheusConfig(bind_address=f"{metrics_host}:{metrics_port}") if metrics_port is not None
               else None)
    return Runtime(telemetry=TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                              forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core"))),
        metrics=metrics,
    ))


def follow_through_workflow_id(engagement_id: str, action_id: str) -> str:
    """An action's own workflow: its follow-through (begun before the check-in loop) or its ActionWorkflow."""
    return f"{engagement_workflow_id(engagement_id)}/{action_id}"


def checkin_loop_workflow_id(engagement_id: str) -> str:
    """The check-in loop of an engagement (workflows/checkin_loop.py), for engagements begun since it."""
    return f"{engagement_workflow_id(engagement_id)}/checkins"
