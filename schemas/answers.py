"""What an owner's answer may change, and what became of it.

An answer arrives by the check-in page, an email reply or the CLI. Each carries an id (the workflow update id),
and the action's follow-through applies it or rejects it explicitly; `AnswerResult` says which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.common import Email


class AnswerScope(BaseModel):
    """What a signed link or Reply-To token grants: one action's check-in (or one pre-read), for one recipient,
    until it expires. Kept server-side (`answer_scopes`), named by an opaque id in the token."""

    engagement_id: str
    action_id: str | None = None
    preread_id: str | None = None
    number: int = Field(default=0, ge=0)
    recipient: Email
    expires_at: datetime

    @property
    def is_invitation(self) -> bool:
        """An invitation's scope: the attendee's RSVP (an iMIP REPLY) is all an answer to it may carry."""
        return self.action_id is None and self.preread_id is None


class AnswerResult(BaseModel):
    """The follow-through's verdict on one answer, kept on the action's view (the latest few)."""

    answer_id: str
    outcome: Literal["applied", "rejected"]
    kind: Literal["value", "snooze", "blocked"]
    detail: str = Field(description="in words the sender can act on, e.g. 'A1 closed (achieved) before this value'")
