"""`engage preview`: the real workflows on the time-skipping server, recording instead of sending."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from cli.preview import preview
from schemas.outcomes import Outcomes
from schemas.scoping import Scoping
from schemas.views import Preview

EXAMPLES = Path(__file__).parent.parent / "examples"
ENGAGE = str(Path(sys.executable).parent / "engage")


def load(name: str, model: type) -> object:
    return model.model_validate(yaml.safe_load((EXAMPLES / name).read_text()))


async def test_preview_lists_every_message_at_its_local_time() -> None:
    scoping = load("scoping.yaml", Scoping)
    outcomes = load("outcomes.yaml", Outcomes)
    result = await preview(scoping, outcomes)  # type: ignore[arg-type]
    kinds = Counter(i.kind for i in result.items)
    assert kinds["invitation"] == 4  # three participants and the consultant's copy
    assert kinds["action_assignment"] == 2
    assert kinds["report"] == 2
    assert kinds["checkin_request"] >= 2 * 5, "14-day cadence over 90 days, two owners"
    assert kinds["escalation"] >= 2, "owners who never answer are escalated"
    zones = {"ben@acme.example": "Europe/Berlin", "ana@acme.example": "America/Sao_Paulo"}
    for item in result.items:
        if item.kind == "checkin_request":
            assert item.at.astimezone(ZoneInfo(zones[item.recipient])).time().replace(microsecond=0) == time(9)
            assert zones[item.recipient] in item.local_time and "09:00" in item.local_time
    assert [i.at for i in result.items] == sorted(i.at for i in result.items)
    assert result.horizon_end is not None and all(i.at <= result.horizon_end for i in result.items
                                                  if i.kind == "checkin_request")


async def test_preview_command_json_without_outcomes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    proc = await asyncio.create_subprocess_exec(ENGAGE, "preview", str(EXAMPLES / "scoping.yaml"), "--json",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=env)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result = Preview.model_validate_json(out)
    # Nobody answers in a preview: the reminder to answer the invitation is part of what would happen.
    assert {i.kind for i in result.items} == {"invitation", "invitation_reminder", "calendar"}
    assert result.horizon_end is None
