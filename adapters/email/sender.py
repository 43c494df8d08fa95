"""The mail sender process: SMTP conversations and their outbox marks, in a process of their own.

Why a process: between the relay's 250 and the `UPDATE` that marks the message sent, a SIGKILL sends it again on
retry (docs/email.md, "The remaining window"). In the worker's process the coroutine that heard the 250 waits for
the interpreter lock, held by workflow activations replaying after a restart, and for its turn on a busy loop:
tens of milliseconds in the chaos run. Here nothing else runs, so the mark follows the 250 as soon as the
kernel wakes the process.

It outlives the worker for what it has in hand. A worker that dies (SIGKILL, the OOM killer, a crash) closes the
child's stdin; the child finishes the conversations it had begun, marks them, and exits. Each conversation holds
the message's conversation lock (store/outbox.py `conversing`), which the next attempt waits for, so the retry
finds the row sent. Only a crash that takes both processes at once (the machine, the container) can still fall
between the relay's 250 and the mark: the window of RFC 1047, milliseconds long (docs/email.md).

- `SenderProcess` (in the worker): starts the child on first use, writes one `Conversation` line per message
  to its stdin and hands back the `ConversationOutcome` line it answers with; a child that died is started
  again on the next message, and the messages it had in hand fail and are retried by their activities.
- `main` (the child, `python -m adapters.email.sender`): reads conversations, runs each (`converse`) with its
  mark on a connection of its own pool, and answers.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
import weakref
from pathlib import Path

import asyncpg
import structlog

from adapters.email.smtp import (
    DeliveryFailed,
    InsecureRelayError,
    PermanentDeliveryError,
    converse,
    smtp_target,
)
from schemas.messages import Conversation, ConversationOutcome
from store import outbox
from store.db import DATABASE_AWAY

log = structlog.get_logger(__name__)

LINE_LIMIT = 64 * 1024 * 1024  # one message with its attachments, base64 in a JSON line
_ROOT = Path(__file__).resolve().parents[2]


class SenderProcess:
    """The worker's side: one child per event loop and environment (`for_running_loop`)."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, SenderProcess]] = (
        weakref.WeakKeyDictionary())

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        # request id -> (the child it went to, its answer)
        self._pending: dict[int, tuple[asyncio.subprocess.Process, asyncio.Future[ConversationOutcome]]] = {}
        self._next_id = 0
        self._starting = asyncio.Lock()

    @classmethod
    def for_running_loop(cls) -> SenderProcess:
        """The child of this loop, started with the process's environment as it is now (SSL_CERT_FILE and the
        like reach the conversation through it). A worker's never changes; a test that changes it gets a child
        of its own."""
        senders = cls._by_loop.setdefault(asyncio.get_running_loop(), {})
        environment = hash(frozenset(os.environ.items()))
        if environment not in senders:
            senders[environment] = cls()
        return senders[environment]

    async def _running(self) -> asyncio.subprocess.Process:
        async with self._starting:
            if self._proc is None or self._proc.returncode is not None:
                path = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
                env = {**os.environ, "PYTHONPATH": path}
                # stderr is the worker's: the child's log lines land where the worker's do.
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "adapters.email.sender", stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, env=env, limit=LINE_LIMIT)
                self._proc = proc
                asyncio.get_running_loop().create_task(self._read(proc))
            return self._proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            outcome = ConversationOutcome.model_validate_json(line)
            _, waiter = self._pending.get(outcome.id, (proc, None))
            if waiter is not None and not waiter.done():
                waiter.set_result(outcome)
        code = await proc.wait()
        # What the child had in hand is lost with it: those activities fail and retry.
        for owner, waiter in list(self._pending.values()):
            if owner is proc and not waiter.done():
                waiter.set_exception(DeliveryFailed(f"the mail sender process exited ({code})"))

    async def converse(self, request: Conversation) -> ConversationOutcome:
        proc = await self._running()
        assert proc.stdin is not None
        self._next_id += 1
        request = request.model_copy(update={"id": self._next_id})
        waiter: asyncio.Future[ConversationOutcome] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = (proc, waiter)
        try:
            proc.stdin.write(request.model_dump_json().encode() + b"\n")
            await proc.stdin.drain()
            return await waiter
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise DeliveryFailed(f"the mail sender process is gone: {exc}") from exc
        finally:
            self._pending.pop(request.id, None)


def raise_for(outcome: ConversationOutcome) -> None:
    """The child's failure, as the exception the send activity reports (permanent or retryable)."""
    if outcome.outcome == "permanent":
        raise PermanentDeliveryError(outcome.error)
    if outcome.outcome == "insecure":
        raise InsecureRelayError(outcome.error)
    if outcome.outcome == "failed":
        raise DeliveryFailed(outcome.error)


# --- the child ---------------------------------------------------------------------------------------------------


class _Child:
    def __init__(self, replies: int) -> None:
        self.replies = replies
        self.pools: dict[str, asyncpg.Pool] = {}
        self.opening = asyncio.Lock()

    async def pool_for(self, dsn: str) -> asyncpg.Pool:
        async with self.opening:  # two first conversations at once open one pool
            if dsn not in self.pools:
                pool = await asyncpg.create_pool(dsn, min_size=0, max_size=8, timeout=5.0)
                assert pool is not None
                self.pools[dsn] = pool
            return self.pools[dsn]

    def answer(self, outcome: ConversationOutcome) -> None:
        # One small line, written whole: the pipe takes it at once while the worker reads.
        try:
            os.write(self.replies, outcome.model_dump_json().encode() + b"\n")
        except BrokenPipeError:  # the worker died meanwhile; the row says what happened
            log.info("the worker is gone; conversation finished without it", request=outcome.id,
                     outcome=outcome.outcome, marked=outcome.marked)

    async def run(self, request: Conversation) -> None:
        marked = False
        try:
            pool = await self.pool_for(request.database_url)
            # Taken before the conversation, so the mark is one write away; the lock tells a retry to wait.
            async with outbox.conversing(pool, request.message_id) as mark_conn:

                async def mark() -> None:
                    nonlocal marked
                    try:
                        await outbox.mark_sent(mark_conn, request.message_id)
                        marked = True
                    except DATABASE_AWAY as exc:
                        log.warning("the relay accepted the message; Postgres is away, the worker marks it",
                                    message_id=request.message_id, error=type(exc).__name__)

                refused, timing = await converse(smtp_target(request.smtp_url), pickle.loads(request.mime),  # noqa: S301 - from our own parent
                                                 request.envelope_from, request.recipients, accepted=mark)
        except PermanentDeliveryError as exc:
            self.answer(ConversationOutcome(id=request.id, outcome="permanent", error=str(exc)))
        except InsecureRelayError as exc:
            self.answer(ConversationOutcome(id=request.id, outcome="insecure", error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - every other failure is retried by the activity, named
            self.answer(ConversationOutcome(id=request.id, outcome="failed", marked=marked,
                                            error=f"{type(exc).__name__}: {exc}"))
        else:
            self.answer(ConversationOutcome(id=request.id, outcome="accepted", refused=refused, marked=marked,
                                            marking_at_ns=timing.marking_at_ns, window_s=timing.window_s,
                                            quit_s=timing.quit_s))


async def _serve() -> None:
    replies = os.dup(1)
    os.dup2(2, 1)  # a stray print goes to the log, never into the answers
    child = _Child(replies)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    running: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        if not line.endswith(b"\n"):  # the worker died while writing it: that message was never in hand
            log.info("the worker died mid-request; its activity will retry it", received_bytes=len(line))
            break
        try:
            request = Conversation.model_validate_json(line)
        except ValueError as exc:  # never ours to fail on: the worker hears nothing and its activity times out
            log.error("unreadable request from the worker", error=str(exc)[:200])
            continue
        task = loop.create_task(child.run(request))
        running.add(task)
        task.add_done_callback(running.discard)
    # The worker closed our stdin (it stopped, or died): finish what is in hand, then go.
    if running:
        log.info("the worker stopped or died; finishing the conversations in hand", conversations=len(running))
        await asyncio.wait(running, timeout=60)


def main() -> None:
    # Ctrl-C in the worker's terminal reaches this process too: the worker's exit (our stdin's end) is what
    # stops us, after the conversations in hand.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from adapters.logging import configure_logging

    configure_logging("json")
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
