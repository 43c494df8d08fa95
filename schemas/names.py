"""The engagement's phases and formats: plain enums, importable without pydantic (the CLI's `--help` uses
them as choices and must stay fast)."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    scoping = "scoping"
    format_choice = "format_choice"
    scheduling = "scheduling"
    pre_reads = "pre_reads"
    session = "session"
    action_assignment = "action_assignment"
    follow_through = "follow_through"
    closed = "closed"
    cancelled = "cancelled"


class EngagementFormat(StrEnum):
    offsite = "offsite"
    strategy_session = "strategy_session"
    combined = "combined"  # an offsite that hosts a strategy session
