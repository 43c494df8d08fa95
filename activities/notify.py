"""The notify activities: one email (or one engagement's round of them), each once, then its `message_sent` event in
the log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.clock import finished_at
from adapters.email.send import Mailer
from adapters.email.smtp import PermanentDeliveryError
from schemas.events import MessageSent, NewEvent
from schemas.messages import OutboundMessage, SendResult
from schemas.telemetry import MESSAGES_SENT
from store.events import EventWriter

log = structlog.get_logger(__name__)


class NotifyActivities:
    def __init__(self, writer: EventWriter, mailer: Mailer) -> None:
        self.writer = writer
        self.mailer = mailer

    @activity.defn(name="send_message")
    async def send_message(self, message: OutboundMessage) -> SendResult:
        try:
            return await self._send(message, set(activity.info().heartbeat_details), activity.heartbeat)
        except PermanentDeliveryError as exc:
            # A relay that refuses the address will refuse it on every retry.
            raise ApplicationError(str(exc), type="PermanentDeliveryError", non_retryable=True) from exc

    @activity.defn(name="send_messages")
    async def send_messages(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """The messages of one engagement that fall due together (its check-in loop's round), in one activity.

        A retry sends only what the outbox does not hold as sent. A relay that refuses one message for good
        does not hold back the others: that message's result says so (`refused`), and the loop logs it."""
        accepted = set(activity.info().heartbeat_details)

        def remember(message_id: str) -> None:
            accepted.add(message_id)  # every message of the batch the relay has, kept for the next attempt
            activity.heartbeat(*sorted(accepted))

        async def one(message: OutboundMessage) -> SendResult:
            try:
                return await self._send(message, accepted, remember)
            except PermanentDeliveryError as exc:
                log.error("message refused for good", engagement_id=message.engagement_id,
                          action_id=message.action_id, kind=message.kind.value, error=str(exc))
                return SendResult(message_id=self.mailer.message_id(message), delivered_now=False,
                                  refused=str(exc))

        # All at once, each under its own outbox lock: in a burst the round waits for the pool's connections
        # once, not once per message, so its loop hears the result while it is still in the worker's cache
        # (docs/BENCHMARKS.md, "Session 13"). Every message is settled before a failure is raised, so a retry
        # finds each one either sent or not begun.
        outcomes = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        at = finished_at()
        return [r.model_copy(update={"at": at}) for r in outcomes if isinstance(r, SendResult)]

    async def _send(self, message: OutboundMessage, accepted: set[str],
                    remember_accepted: Callable[[str], None]) -> SendResult:
        bound = log.bind(engagement_id=message.engagement_id, action_id=message.action_id,
                         workflow_id=activity.info().workflow_id, kind=message.kind.value)
        # An earlier attempt heard the relay's 250 but Postgres was away for the mark: it said so in its
        # heartbeat, which Temporal keeps for the retry (Mailer.send, `relay_has_it`).
        relay_has_it = self.mailer.message_id(message) in accepted
        result = await self.mailer.send(message, relay_has_it=relay_has_it, remember_accepted=remember_accepted)
        if result.delivered_now:
            name, description = MESSAGES_SENT
            activity.metric_meter().create_counter(name, description).add(1, {"kind": message.kind.value})
        recipients = [message.to.email, *(c.email for c in message.cc)]
        await self.writer.append(message.engagement_id, [
            NewEvent(
                key=f"{message.key}#sent",
                occurred_at=activity.info().current_attempt_scheduled_time,
                event=MessageSent(message_id=result.message_id, kind=message.kind, recipients=recipients,
                                  subject=result.subject, action_id=message.action_id),
            ),
            *message.events,
        ])
        # The one log line per message (the Mailer does not log its own success).
        bound.info("message sent" if result.delivered_now else "message already sent",
                   message_id=result.message_id, recipients=len(recipients))
        return result.model_copy(update={"at": finished_at()})
