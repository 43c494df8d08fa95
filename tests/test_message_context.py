"""MessageContext.with_: a change to a message's template variables names real fields and is validated
(`model_copy(update=...)` keeps a misspelt name where no template reads it, and checks no value)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from schemas.messages import ActionSummary, MessageContext

BASE = MessageContext(
    client="Acme", engagement_id="acme-2027", recipient_name="Ana", consultant_name="Carla",
    actions=[ActionSummary(action_id="A1", title="Cut churn", owner_name="Ana", status="on_track", baseline=10,
                           target=5, unit="%", due=date(2027, 6, 30))],
)


def test_with_changes_the_named_fields_and_validates_them() -> None:
    changed = BASE.with_(unit="%", due="2027-02-03", checkin_number=3)
    assert (changed.unit, changed.due, changed.checkin_number) == ("%", date(2027, 2, 3), 3)
    assert changed.actions == BASE.actions and changed.client == "Acme"
    assert BASE.unit is None and BASE.checkin_number is None  # the original is untouched
    with pytest.raises(ValidationError):
        BASE.with_(checkin_number="three")


def test_with_refuses_a_name_that_is_not_a_field() -> None:
    with pytest.raises(TypeError, match="'unti'"):
        BASE.with_(unti="%")
    assert BASE.model_copy(update={"unti": "%"}).unit is None  # the typo is dropped without a word: what with_ is for
