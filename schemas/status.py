"""Action status values, computed by `domain/status.py` (the rule lives there, and only there)."""

from __future__ import annotations

from enum import StrEnum


class ActionStatus(StrEnum):
    no_data = "no_data"
    on_track = "on_track"
    behind = "behind"
    at_risk = "at_risk"
    achieved = "achieved"
