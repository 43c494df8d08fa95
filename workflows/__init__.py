"""Deterministic workflow code only: decisions, timers and waits; activities do the I/O."""

from __future__ import annotations


def __getattr__(name: str) -> object:
    # Imported lazily: the workflow sandbox re-imports these modules, and `engage --help` should not pay
    # for temporalio.
    if name == "ALL_WORKFLOWS":
        from workflows.engagement import EngagementWorkflow
        from workflows.follow_through import ActionFollowThroughWorkflow

        return [EngagementWorkflow, ActionFollowThroughWorkflow]
    raise AttributeError(name)
