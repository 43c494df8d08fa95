"""An owner's answer, whichever way it came (a reply by mail, a form on the check-in page), applied once.

One path for both: the answer is reserved in the answer ledger (store/inbound.py) under its key, sent to the
engagement as an update whose id is the answer id (so Temporal applies it once too, even sent twice at once),
and the ledger row is finished with what the owner is told and the answer mail, so a redelivery can send that
mail when the first attempt could not. No connection is held while Temporal decides: many answers at once would
drain the pool (and, in one process with a worker, starve its activities).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters.engagement_client import TRANSIENT, Update, engagement_handle
from schemas.answers import AnswerScope
from schemas.messages import OutboundMessage
from store import inbound
from store.inbound import Channel, InboundStatus


@dataclass(frozen=True)
class Submission:
    """One answer as the ledger and Temporal know it."""

    scope: AnswerScope
    ledger_id: str  # the reply's Message-ID, or `page:<form id>`
    update_id: str  # the answer id the workflow keeps its verdict under
    sender: str
    command: str  # what it asks, for the ledger (value, snooze, blocked, ack, rsvp, ...)
    channel: Channel


@dataclass(frozen=True)
class Refused:
    """An answer that changes nothing, and why (`reason` as the ledger keeps it, `detail` in words)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Applied:
    """An answer the workflow took: the update's result."""

    result: Any


@dataclass(frozen=True)
class Submitted:
    """What became of an answer. A duplicate (`first` says how the earlier attempt ended) changed nothing and
    is told nothing new here: each way in says it in its own words."""

    outcome: Literal["applied", "rejected", "duplicate"]
    reason: str | None = None
    told: str = ""  # what the owner is told, as the ledger keeps it
    result: Any = None  # of the update, when applied
    answer: OutboundMessage | None = None  # the answer mail to send, when there is one
    first: InboundStatus | None = None


class AnswerUnconfirmed(Exception):  # noqa: N818 - the answer is neither applied nor refused yet
    """Temporal did not confirm the answer: it timed out (`timed_out`), or could not be reached. The ledger row
    stays pending, so the same answer sent again is applied (once)."""

    def __init__(self, detail: str, *, timed_out: bool) -> None:
        super().__init__(detail)
        self.timed_out = timed_out


# How the owner is told, per way in: (what the ledger keeps and the owner reads, the answer mail or None).
Tell = Callable[[Applied | Refused], Awaitable[tuple[str, OutboundMessage | None]]]


async def submit_answer(pool: asyncpg.Pool, client: Client, answer: Submission,
                        request: tuple[Update[Any], BaseModel] | Refused, tell: Tell, *,
                        rpc_timeout: timedelta, wait: timedelta | None = None) -> Submitted:
    """Reserve -> update (by the answer id) -> finish with what the owner is told and the answer mail.

    `request` is the update and its payload, or why the answer was refused before any update (it is finished
    in the ledger and told all the same). `wait` bounds the whole update (default: `rpc_timeout`).
    Raises AnswerUnconfirmed when Temporal does not answer in time or cannot be reached."""
    scope = answer.scope
    first = await inbound.reserve(
        pool, message_id=answer.ledger_id, engagement_id=scope.engagement_id, action_id=scope.action_id,
        preread_id=scope.preread_id, sender=answer.sender, command=answer.command, channel=answer.channel)
    if first != "pending":
        return Submitted(outcome="duplicate", first=first)
    verdict = request if isinstance(request, Refused) else await _apply(client, answer, *request,
                                                                        rpc_timeout=rpc_timeout, wait=wait)
    told, mail = await tell(verdict)
    mail_json = mail.model_dump_json() if mail is not None else None
    if isinstance(verdict, Refused):
        await inbound.finish(pool, answer.ledger_id, "rejected", verdict.reason, told, mail_json)
        return Submitted(outcome="rejected", reason=verdict.reason, told=told, answer=mail)
    await inbound.finish(pool, answer.ledger_id, "applied", None, told, mail_json)
    return Submitted(outcome="applied", told=told, result=verdict.result, answer=mail)


async def _apply(client: Client, answer: Submission, update: Update[Any], payload: BaseModel, *,
                 rpc_timeout: timedelta, wait: timedelta | None) -> Applied | Refused:
    engagement_id = answer.scope.engagement_id
    handle = engagement_handle(client, engagement_id)
    try:
        return Applied(await asyncio.wait_for(
            handle.execute_update(update, payload, id=answer.update_id, rpc_timeout=rpc_timeout),
            (wait or rpc_timeout).total_seconds()))
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        detail = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        return Refused("not_accepted", detail.removeprefix("action: "))
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return Refused("engagement_not_running", f"the engagement {engagement_id} has ended")
        if exc.status in TRANSIENT:
            raise AnswerUnconfirmed(f"{type(exc).__name__}: {exc.message}", timed_out=False) from None
        raise
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError) as exc:
        raise AnswerUnconfirmed(type(exc).__name__, timed_out=True) from None
    except RuntimeError as exc:
        # A client that has to (re)connect first fails with "Failed client connect: ...".
        if "client connect" not in str(exc):
            raise
        raise AnswerUnconfirmed("cannot connect to Temporal", timed_out=False) from None
