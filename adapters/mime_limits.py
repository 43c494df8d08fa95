"""Reading a message that anyone on the internet may have sent: caps before parsing, then the parse itself in a
worker process under a time limit.

Shared by every inbound path (the SMTP server, the IMAP poller): `parse_limited(raw)` returns the parsed message
or raises `UnparseableMessage`, whose `smtp_response()` is a 550 naming the cap. A message we cannot read will
not become readable on a retry, so it is refused for good (550), never deferred (a 451 makes a relay retry for
days).

Why a process and not a thread (measured with Python 3.12, email.policy.default): the parser is lazy, so the
cost is in reading headers and bodies, and some of it grows faster than the input. One `To:` header of
`a@b.c, ` repeated costs 0.06 s at 2 KiB, 0.23 s at 8 KiB, 1.0 s at 32 KiB; 32 KiB of `"a" ` in a From header
0.67 s; a 100-deep multipart 0.13 s, a 1,000-deep one 1.5 s and then RecursionError; nested comments in an
address raise RecursionError. Within the caps below a message still costs up to about 2 s of CPU (eight 8 KiB
address headers), and the caps cannot foresee every quadratic path of the standard library. A thread doing that
holds the interpreter lock against the event loop and cannot be stopped when its time is up; a process can be
killed, and its CPU is not the event loop's. A round trip through the pool costs about a millisecond for a
normal reply (the message comes back pickled: 0.4 ms for a 150 KB message).

What the parent then reads is re-parsed lazily there (header objects are not cached by the parser), but only
from a message that passed the caps and was read whole within the limit in the child.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import email
import email.policy
import multiprocessing
import re
from email.message import EmailMessage, Message

# One reply's headers are a few KiB; a long thread's References header grows ~60 bytes per message.
MAX_HEADER_BLOCK_BYTES = 64 * 1024
MAX_HEADER_BYTES = 8 * 1024  # one header with its continuation lines
MAX_HEADERS = 200
# A reply is text, maybe html, maybe a signature image: multipart/mixed > alternative > related is depth 3.
MAX_MIME_DEPTH = 10
MAX_MIME_PARTS = 100
# Lines that look like MIME delimiters (`--...`) before the scan gives up: bounds the scan's own cost.
_MAX_DELIMITER_LINES = 10_000
PARSE_TIMEOUT = 5.0
# Parses at once (worker processes). A message waits for a free one at most this long, then is deferred (451):
# a busy server is not the sender's fault.
PARSE_WORKERS = 2
QUEUE_TIMEOUT = 30.0


class UnparseableMessage(ValueError):  # noqa: N818 - the name callers know
    """A message refused before or while parsing; `reason` names the cap it broke, or `unparseable`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def smtp_response(self) -> str:
        return f"550 5.6.0 message refused ({self.reason}): {self.detail or 'the message cannot be read'}"[:300]


class ParserBusy(RuntimeError):
    """Every parse worker stayed busy for QUEUE_TIMEOUT: try again later (451)."""


# ---------------------------------------------------------------------------------------------------------
# Caps, checked on the raw bytes before anything parses them
# ---------------------------------------------------------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))""", re.IGNORECASE)
_MIME_LINE = re.compile(
    rb"(?P<ct>^content-type[ \t]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)|(?P<delim>^--[^\r\n]*)",
    re.IGNORECASE | re.MULTILINE)


def check_header_caps(raw: bytes) -> None:
    """The top-level header block: its size, each header's size (continuations included), their number."""
    end = _HEADER_END.search(raw, 0, MAX_HEADER_BLOCK_BYTES + 4)
    block = raw[: end.start()] if end else raw
    if len(block) > MAX_HEADER_BLOCK_BYTES:
        raise UnparseableMessage("header_block_too_large",
                                 f"the headers exceed {MAX_HEADER_BLOCK_BYTES // 1024} KiB")
    count = 0
    size = 0
    for line in block.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            size += len(line) + 1
        else:
            count += 1
            size = len(line) + 1
            if count > MAX_HEADERS:
                raise UnparseableMessage("too_many_headers", f"more than {MAX_HEADERS} headers")
        if size > MAX_HEADER_BYTES:
            raise UnparseableMessage("header_too_long", f"a header exceeds {MAX_HEADER_BYTES // 1024} KiB")


def check_mime_caps(raw: bytes) -> None:
    """MIME depth and part count from the boundaries the message declares, before the parser recurses into them.

    A regex finds the only lines that matter (Content-Type headers and `--` lines), so the scan runs at C speed
    over a 10 MiB body; a declared boundary opens a level, its closing delimiter closes it and those inside."""
    open_boundaries: list[bytes] = []
    parts = delimiters = 0
    for match in _MIME_LINE.finditer(raw):
        if match.lastgroup == "ct":
            declared = _BOUNDARY.search(match.group("ct"))
            if declared is not None:
                open_boundaries.append(declared.group(1) if declared.group(1) is not None else declared.group(2))
                if len(open_boundaries) > MAX_MIME_DEPTH:
                    raise UnparseableMessage("mime_too_deep", f"multiparts nest deeper than {MAX_MIME_DEPTH}")
            continue
        delimiters += 1
        if delimiters > _MAX_DELIMITER_LINES:
            raise UnparseableMessage("too_many_parts", f"more than {_MAX_DELIMITER_LINES} delimiter lines")
        line = match.group("delim").rstrip()
        for level in range(len(open_boundaries) - 1, -1, -1):
            boundary = open_boundaries[level]
            if line == b"--" + boundary + b"--":
                del open_boundaries[level:]
                break
            if line == b"--" + boundary:
                del open_boundaries[level + 1:]  # a new sibling part ends any multipart left open in the last one
                parts += 1
                if parts > MAX_MIME_PARTS:
                    raise UnparseableMessage("too_many_parts", f"more than {MAX_MIME_PARTS} MIME parts")
                break


def check_caps(raw: bytes) -> None:
    check_header_caps(raw)
    check_mime_caps(raw)


# ---------------------------------------------------------------------------------------------------------
# The parse, in a worker process
# ---------------------------------------------------------------------------------------------------------


def _check_tree(message: Message) -> None:
    """The parsed tree against the caps (the pre-scan is a bound on what the parser will see, this is the fact),
    and every header of every part read once, so a header the parser cannot read fails here, in time."""
    stack: list[tuple[Message, int]] = [(message, 1)]
    parts = 0
    while stack:
        part, depth = stack.pop()
        parts += 1
        if depth > MAX_MIME_DEPTH + 1:
            raise UnparseableMessage("mime_too_deep", f"multiparts nest deeper than {MAX_MIME_DEPTH}")
        if parts > MAX_MIME_PARTS + 1:
            raise UnparseableMessage("too_many_parts", f"more than {MAX_MIME_PARTS} MIME parts")
        items = part.items()
        if len(items) > MAX_HEADERS:
            raise UnparseableMessage("too_many_headers", f"more than {MAX_HEADERS} headers in a part")
        for name, value in items:
            if len(name) + len(str(value)) > MAX_HEADER_BYTES:
                raise UnparseableMessage("header_too_long", f"a header exceeds {MAX_HEADER_BYTES // 1024} KiB")
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def parse_now(raw: bytes) -> EmailMessage:
    """Caps, parse, and read what a reader will read: in the calling thread, with no time limit. The worker
    process runs this; tests and tools may call it directly."""
    check_caps(raw)
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        _check_tree(message)
    except UnparseableMessage:
        raise
    except (RecursionError, MemoryError) as exc:
        raise UnparseableMessage("unparseable", f"the parser gave up ({type(exc).__name__})") from exc
    except Exception as exc:  # noqa: BLE001 - any parser failure is the message's, and it will not change
        raise UnparseableMessage("unparseable", f"{type(exc).__name__}: {str(exc)[:80]}") from exc
    assert isinstance(message, EmailMessage)
    # The body the reader looks for; a charset it cannot decode is for the reader to answer, not a reason to refuse.
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        if body is not None:
            body.get_content()
    except (RecursionError, MemoryError) as exc:
        raise UnparseableMessage("unparseable", f"the body cannot be read ({type(exc).__name__})") from exc
    except Exception:  # noqa: BLE001, S110 - see above
        pass
    return message


class _Pool:
    """A few worker processes, replaced whole when one must be killed (a timed-out parse cannot be cancelled)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_hook_registered = False

    def _ensure(self) -> tuple[concurrent.futures.ProcessPoolExecutor, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.workers), loop
        if self._executor is None:
            # forkserver: the inbound server's process has threads (the Temporal core), which fork must not copy.
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("forkserver"))
            if not self._exit_hook_registered:
                # A process that parsed without stopping a server (a test, a tool) leaves no worker or forkserver.
                atexit.register(shutdown_parsers)
                self._exit_hook_registered = True
        return self._executor, self._slots

    def kill(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # No public way to stop a running task; None once the executor has shut down (at exit, for one).
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # reaped now, so that a stopping server leaves no child behind
            process.join(timeout=2)

    async def run(self, raw: bytes, timeout: float) -> EmailMessage:
        executor, slots = self._ensure()
        try:
            await asyncio.wait_for(slots.acquire(), QUEUE_TIMEOUT)
        except TimeoutError as exc:
            raise ParserBusy("every parse worker is busy") from exc
        try:
            for attempt in (1, 2):
                executor, _ = self._ensure()
                future = asyncio.get_running_loop().run_in_executor(executor, parse_now, raw)
                try:
                    return await asyncio.wait_for(future, timeout)
                except TimeoutError as exc:
                    self.kill()
                    raise UnparseableMessage("parse_timeout", f"not read within {timeout:g} s") from exc
                except concurrent.futures.process.BrokenProcessPool as exc:
                    # Killed for another message's timeout: once more on a fresh pool. Twice is our failure (the
                    # parser is pure Python: a message makes it raise, not crash), so the relay tries again later.
                    self.kill()
                    if attempt == 2:
                        raise ParserBusy("the parse workers failed") from exc
            raise AssertionError("unreachable")
        finally:
            slots.release()


_POOL = _Pool(PARSE_WORKERS)


async def parse_limited(raw: bytes, *, timeout: float = PARSE_TIMEOUT) -> EmailMessage:
    """The parsed message, read within `timeout` seconds in a worker process; UnparseableMessage when it breaks a
    cap (checked here first, cheaply) or cannot be read in time; ParserBusy when no worker frees up in time."""
    check_caps(raw)
    return await _POOL.run(raw, timeout)


async def warm_up() -> None:
    """Start the worker processes now rather than on the first reply (about half a second)."""
    await parse_limited(b"Subject: warm-up\r\n\r\n.\r\n")


def shutdown_parsers() -> None:
    """Stop the worker processes (they are started again on the next parse), and the forkserver that starts
    them: a stopped server leaves no process behind."""
    _POOL.kill()
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # no public way; present in CPython 3.11 to 3.13
    if callable(stop):
        stop()
