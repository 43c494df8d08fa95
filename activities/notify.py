"""The notify activity: one email, once, then its `message_sent` event in the log."""

from __future__ import annotations

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
        bound = log.bind(engagement_id=message.engagement_id, action_id=message.action_id,
                         workflow_id=activity.info().workflow_id, kind=message.kind.value)
        # An earlier attempt heard the relay's 250 but Postgres was away for the mark: it said so in its
        # heartbeat, which Temporal keeps for the retry (Mailer.send, `relay_has_it`).
        relay_has_it = self.mailer.message_id(message) in activity.info().heartbeat_details
        try:
            result = await self.mailer.send(message, relay_has_it=relay_has_it, remember_accepted=activity.heartbeat)
        except PermanentDeliveryError as exc:
            # A relay that refuses the address will refuse it on every retry.
            raise ApplicationError(str(exc), type="PermanentDeliveryError", non_retryable=True) from exc
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
