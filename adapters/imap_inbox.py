"""Replies without an MX: `engage inbox --imap URL` reads a mailbox (e.g. a shared `checkins@` mailbox of
Microsoft 365 or Google Workspace) instead of running the inbound SMTP server.

Each message in the mailbox goes through the same `apply_reply` as a message delivered over SMTP. IMAP has no
envelope, so the sender is the `Return-Path` header the receiving server wrote at delivery (the From header when
there is none), and the recipients are the addresses of `Delivered-To`, `X-Original-To`, `To` and `Cc`.

A message applied or rejected is moved to the processed folder (MOVE, or COPY + \\Deleted + EXPUNGE on servers
without it); a deferred one (Temporal or Postgres unreachable) stays and is tried again after the poll interval.
Each message is handled once across restarts: apply_reply's ledger (one row per Message-ID) makes a second
attempt a no-op ("duplicate"), so a crash between applying a reply and moving it ends with the move on the next
run, and nothing twice.

The mailbox is watched with IDLE when the server offers it, polled otherwise. The IMAP client (imapclient, on
the standard library's imaplib) is blocking: its calls run in a thread, one at a time, while replies are applied
on the event loop that owns the Temporal client.
"""

from __future__ import annotations

import asyncio
import email.policy
import imaplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from schemas.settings import Settings

if TYPE_CHECKING:  # the URL and its errors are needed by the CLI before any of these is
    import asyncpg
    from temporalio.client import Client

log = structlog.get_logger(__name__)

DEFAULT_PROCESSED = "engage-processed"
DEFAULT_POLL_SECONDS = 30.0
# Servers end an IDLE after 29 minutes at most (RFC 2177), some (Gmail, Microsoft 365) sooner, and NAT boxes
# forget quiet connections: renew it well before, and look at the whole mailbox again each time.
IDLE_RENEW_SECONDS = 300.0
# How long one blocking wait for IDLE news lasts: the longest a stop waits for the watcher.
IDLE_CHECK_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 15.0
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")

_QUERY_KEYS = ("processed", "poll", "idle")


class ImapUrlError(ValueError):
    """A bad `--imap` URL, or one the server refuses (login, mailbox): exit 2."""


class ImapUnavailable(ConnectionError):
    """The IMAP server cannot be reached: exit 3."""

    def __init__(self, label: str, cause: BaseException) -> None:
        reason = str(cause) or type(cause).__name__
        super().__init__(f"cannot reach the IMAP server {label}: {reason}")


@dataclass(frozen=True)
class ImapUrl:
    """`imaps://user:password@host:993/INBOX?processed=engage-processed&poll=30&idle=yes`."""

    scheme: Literal["imap", "imaps"]
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    mailbox: str = "INBOX"
    processed: str = DEFAULT_PROCESSED
    poll_seconds: float = DEFAULT_POLL_SECONDS
    idle: bool = True

    @property
    def label(self) -> str:
        """The address without the password, fit for a log line or an error message."""
        return f"{self.scheme}://{self.host}:{self.port}/{self.mailbox}"


def parse_imap_url(url: str) -> ImapUrl:
    """The URL's parts, or ImapUrlError naming what is wrong (never echoing the password)."""
    if not url.strip():
        raise ImapUrlError("no IMAP URL: give --imap URL or set ENGAGE_INBOUND_IMAP_URL")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ImapUrlError("the --imap URL has an invalid port (a number from 1 to 65535)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise ImapUrlError(f"the --imap URL must start with imaps:// or imap://, not {parts.scheme or 'nothing'}"
                           f"{'://' if parts.scheme else ''}")
    if not parts.hostname:
        raise ImapUrlError("the --imap URL names no host: imaps://user:password@host:993/INBOX")
    if not parts.username:
        raise ImapUrlError("the --imap URL names no user: imaps://user:password@host:993/INBOX "
                           "(write @ in a user name as %40)")
    if parts.password is None or parts.password == "":
        raise ImapUrlError("the --imap URL has no password: imaps://user:password@host:993/INBOX "
                           "(percent-encode : @ / ? # in it)")
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _QUERY_KEYS:
            raise ImapUrlError(f"the --imap URL has an unknown parameter {key!r} "
                               f"(known: {', '.join(_QUERY_KEYS)})")
        query[key] = value
    processed = query.get("processed", DEFAULT_PROCESSED).strip()
    if not processed:
        raise ImapUrlError("the --imap URL's processed= names no folder")
    if processed.lower() == mailbox.lower():
        raise ImapUrlError(f"the --imap URL's processed folder must differ from the mailbox read ({mailbox})")
    try:
        poll = float(query.get("poll", DEFAULT_POLL_SECONDS))
    except ValueError:
        raise ImapUrlError("the --imap URL's poll= must be a number of seconds") from None
    if not 0.1 <= poll <= 3600:
        raise ImapUrlError("the --imap URL's poll= must be between 0.1 and 3600 seconds")
    idle = query.get("idle", "yes").lower()
    if idle not in ("yes", "no", "true", "false", "1", "0", "on", "off"):
        raise ImapUrlError("the --imap URL's idle= must be yes or no")
    return ImapUrl(scheme="imaps" if scheme == "imaps" else "imap", host=parts.hostname,
                   port=port or (993 if scheme == "imaps" else 143),
                   user=unquote(parts.username), password=unquote(parts.password), mailbox=mailbox,
                   processed=processed, poll_seconds=poll, idle=idle in ("yes", "true", "1", "on"))


def envelope_of(raw: bytes) -> tuple[str | None, list[str]]:
    """(sender, recipients) of a message taken from a mailbox, where the delivery left them in headers."""
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return_path = headers.get_all("Return-Path")
    # The topmost Return-Path is the one the final delivery wrote; `<>` is the null sender of a bounce.
    source = [str(return_path[0])] if return_path else [str(v) for v in headers.get_all("From", [])]
    senders = [address for _, address in getaddresses(source)]
    sender = senders[0] if senders else ("" if return_path else None)
    recipients: list[str] = []
    for name in RECIPIENT_HEADERS:
        for _, address in getaddresses([str(v) for v in headers.get_all(name, [])]):
            if address and address not in recipients:
                recipients.append(address)
    return sender, recipients


# ---------------------------------------------------------------------------------------------------------
# The blocking IMAP side (runs in a thread)
# ---------------------------------------------------------------------------------------------------------

_NETWORK_ERRORS = (OSError, imaplib.IMAP4.abort, IMAPClientError, ssl.SSLError, EOFError)


class _Mailbox:
    """One logged-in IMAP connection with the mailbox selected. Every method blocks."""

    def __init__(self, url: ImapUrl) -> None:
        self.url = url
        self.tls = url.scheme == "imaps"
        try:
            self.imap = IMAPClient(url.host, url.port, ssl=self.tls, ssl_context=ssl.create_default_context(),
                                   timeout=CONNECT_TIMEOUT_SECONDS)
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            raise ImapUnavailable(url.label, exc) from exc
        try:
            self._login()
            self._select()
        except BaseException:
            self.close()
            raise

    def _login(self) -> None:
        url = self.url
        try:
            if not self.tls and self.imap.has_capability("STARTTLS"):
                self.imap.starttls(ssl.create_default_context())
                self.tls = True
            self.imap.login(url.user, url.password)
        except LoginError as exc:
            raise ImapUrlError(f"the IMAP server {url.label} refused the login of {url.user}: "
                               f"{_text(exc)}") from None
        except ssl.SSLError as exc:
            raise ImapUnavailable(url.label, exc) from exc
        if not self.tls and url.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("imap login without TLS: the password crossed the network in clear text",
                        mailbox=url.label)

    def _select(self) -> None:
        url = self.url
        try:
            self.imap.select_folder(url.mailbox)
        except IMAPClientError as exc:
            raise ImapUrlError(f"the IMAP server {url.label} has no mailbox {url.mailbox!r}: {_text(exc)}") from None
        if not self.imap.folder_exists(url.processed):
            try:
                self.imap.create_folder(url.processed)
            except IMAPClientError as exc:
                raise ImapUrlError(f"the IMAP server {url.label} cannot create the processed folder "
                                   f"{url.processed!r}: {_text(exc)}") from None
            log.info("imap processed folder created", mailbox=url.label, folder=url.processed)

    @property
    def can_idle(self) -> bool:
        return self.url.idle and self.imap.has_capability("IDLE")

    def pending(self) -> list[tuple[int, int]]:
        """(uid, size) of every message in the mailbox not marked deleted, oldest first."""
        self.imap.noop()  # lets a server that reports new mail only between commands catch up first
        uids = sorted(int(u) for u in self.imap.search(["UNDELETED"]))
        if not uids:
            return []
        sizes = self.imap.fetch(uids, [b"RFC822.SIZE"])
        return [(uid, int(sizes[uid][b"RFC822.SIZE"])) for uid in uids if uid in sizes]

    def fetch(self, uid: int) -> bytes | None:
        """The message's bytes, without setting \\Seen; None when it is gone (another reader moved it)."""
        data = self.imap.fetch([uid], [b"BODY.PEEK[]"])
        body = data.get(uid, {}).get(b"BODY[]")
        return bytes(body) if body is not None else None

    def move(self, uid: int) -> None:
        folder = self.url.processed
        if self.imap.has_capability("MOVE"):
            self.imap.move([uid], folder)
            return
        self.imap.copy([uid], folder)
        self.imap.add_flags([uid], [b"\\Deleted"])
        if self.imap.has_capability("UIDPLUS"):
            self.imap.uid_expunge([uid])
        else:  # also expunges whatever else a person marked deleted in this mailbox, as their client would
            self.imap.expunge()

    def idle_wait(self, seconds: float, stopping: Any) -> bool:
        """IDLE until the server reports a change, `seconds` pass, or `stopping` is set; True on a change."""
        self.imap.idle()
        changed = False
        deadline = time.monotonic() + seconds
        while not stopping.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            responses = self.imap.idle_check(timeout=IDLE_CHECK_SECONDS)
            if any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                changed = True
                break
            if not responses and time.monotonic() - started < IDLE_CHECK_SECONDS / 2:
                # Readable with nothing to read: the server closed the connection (imapclient hides the EOF).
                raise imaplib.IMAP4.abort("the server closed the connection during IDLE")
        self.imap.idle_done()
        return changed

    def noop(self) -> None:
        self.imap.noop()

    def close(self) -> None:
        try:
            self.imap.logout()
        except Exception:  # noqa: BLE001 - closing a connection that may already be dead
            try:
                self.imap.shutdown()
            except Exception:  # noqa: BLE001
                pass


def _text(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return " ".join(text.split())[:200]


# ---------------------------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Handled:
    """What became of one message of the mailbox."""

    uid: int
    outcome: Literal["applied", "rejected", "deferred"]
    reason: str | None = None
    message_id: str | None = None
    moved: bool = False


class ImapInbox:
    """Reads one IMAP mailbox and applies each message as a reply, in the caller's asyncio loop (the loop the
    Temporal client lives on). Without a pool, one is created from settings and closed on stop.

    `start` connects, logs in, selects the mailbox and creates the processed folder (ImapUnavailable or
    ImapUrlError when it cannot), then handles what is there and watches for more until `stop`."""

    def __init__(self, settings: Settings, client: Client, pool: asyncpg.Pool | None = None, *,
                 url: ImapUrl | str, update_timeout: timedelta | None = None) -> None:
        self.settings = settings
        self.client = client
        self.url = parse_imap_url(url) if isinstance(url, str) else url
        # How long a reply waits for its workflow update before it is deferred (apply_reply's default if None).
        self.update_timeout = update_timeout
        self.handled: list[Handled] = []
        self._pool = pool
        self._own_pool = pool is None
        self._mailbox: _Mailbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._thread_stopping = _ThreadFlag()
        self._log = log.bind(mailbox=self.url.label, processed=self.url.processed)

    @property
    def address(self) -> str:
        return self.url.label

    async def start(self) -> None:
        self._mailbox = await asyncio.to_thread(_Mailbox, self.url)
        if self._pool is None:
            from store.db import create_pool

            self._pool = await create_pool(self.settings)
        self._log.info("imap inbox reading", idle=self._mailbox.can_idle, tls=self._mailbox.tls,
                       poll_seconds=self.url.poll_seconds)
        self._task = asyncio.create_task(self._run(), name=f"imap inbox {self.url.label}")

    async def stop(self) -> None:
        self._stopping.set()
        self._thread_stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), IDLE_CHECK_SECONDS + 30)
            except TimeoutError:
                self._task.cancel()
            except Exception:  # noqa: BLE001 - already logged by the task
                pass
            self._task = None
        if self._mailbox is not None:
            await asyncio.to_thread(self._mailbox.close)
            self._mailbox = None
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
        self._log.info("imap inbox stopped")

    async def wait(self) -> None:
        """Until the reader ends (only by stop, or by a bug, which is raised here)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aenter__(self) -> ImapInbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- the loop ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                if self._mailbox is None:
                    self._mailbox = await asyncio.to_thread(_Mailbox, self.url)
                    self._log.info("imap inbox reconnected")
                deferred = await self.handle_pending()
                backoff = 1.0
                await self._wait_for_mail(retry_soon=deferred > 0)
            except (ImapUnavailable, ImapUrlError, *_NETWORK_ERRORS) as exc:
                self._log.warning("imap connection lost; reconnecting", error=_text(exc) or type(exc).__name__,
                                  retry_in_seconds=backoff)
                if self._mailbox is not None:
                    await asyncio.to_thread(self._mailbox.close)
                    self._mailbox = None
                await self._sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _wait_for_mail(self, *, retry_soon: bool) -> None:
        assert self._mailbox is not None
        if self._mailbox.can_idle:
            # Deferred replies are tried again after the poll interval, new mail wakes the reader at once.
            seconds = self.url.poll_seconds if retry_soon else IDLE_RENEW_SECONDS
            changed = await asyncio.to_thread(self._mailbox.idle_wait, seconds, self._thread_stopping)
            self._log.debug("imap idle ended", changed=changed)
        else:
            await self._sleep(self.url.poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def handle_pending(self) -> int:
        """Handle every message in the mailbox once; the number deferred (left for a later pass)."""
        mailbox = self._mailbox
        assert mailbox is not None
        deferred = 0
        for uid, size in await asyncio.to_thread(mailbox.pending):
            if self._stopping.is_set():
                break
            handled = await self._handle(mailbox, uid, size)
            if handled is None:
                continue
            self.handled.append(handled)
            deferred += handled.outcome == "deferred"
        return deferred

    async def _handle(self, mailbox: _Mailbox, uid: int, size: int) -> Handled | None:
        from adapters.inbound import MAX_MESSAGE_BYTES, apply_reply

        bound = self._log.bind(imap_uid=uid)
        if size > MAX_MESSAGE_BYTES:
            bound.warning("reply rejected", reason="too_large", size=size)
            await asyncio.to_thread(mailbox.move, uid)
            return Handled(uid, "rejected", "too_large", moved=True)
        raw = await asyncio.to_thread(mailbox.fetch, uid)
        if raw is None:
            return None
        sender, recipients = envelope_of(raw)
        try:
            options: dict[str, Any] = {"timeout": self.update_timeout} if self.update_timeout is not None else {}
            result = await apply_reply(raw, sender, recipients, self.settings, self.client, self._require_pool(),
                                       channel="imap", **options)
        except Exception:  # noqa: BLE001 - a bug must not lose the reply: it stays in the mailbox for a retry
            bound.exception("reply failed; left in the mailbox")
            return Handled(uid, "deferred", "error")
        handled = Handled(uid, result.outcome, result.reason, result.message_id)
        if result.outcome != "deferred":
            # After apply_reply: a crash before this move finds the ledger row next time ("duplicate").
            await asyncio.to_thread(mailbox.move, uid)
            handled.moved = True
            bound.info("imap message moved", outcome=result.outcome, reason=result.reason,
                       message_id=result.message_id)
        return handled

    def _require_pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "start() first"
        return self._pool


class _ThreadFlag:
    """A stop flag the IMAP thread can read (asyncio.Event is not thread-safe)."""

    def __init__(self) -> None:
        import threading

        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


# ---------------------------------------------------------------------------------------------------------
# `engage inbox --imap URL`
# ---------------------------------------------------------------------------------------------------------


async def serve(settings: Settings, url: ImapUrl) -> None:
    """Read the mailbox until SIGINT or SIGTERM."""
    from adapters.inbound_server import inbox_services

    # The mailbox first: a wrong URL or password is the likeliest mistake, and says so before anything starts.
    probe = await asyncio.to_thread(_Mailbox, url)
    await asyncio.to_thread(probe.close)
    async with inbox_services(settings) as (client, pool, stop), ImapInbox(settings, client, pool, url=url) as inbox:
        stopped = asyncio.create_task(stop.wait())
        ended = asyncio.create_task(inbox.wait())
        await asyncio.wait({stopped, ended}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if ended.done():
            ended.result()  # the reader ended by itself: a bug, raised for the exit code and the log
        ended.cancel()
        log.info("imap inbox stopping", mailbox=url.label)


def configured_url(url: str | None = None) -> str | None:
    """The mailbox `engage inbox` reads: `--imap URL`, else ENGAGE_INBOUND_IMAP_URL, else None (SMTP)."""
    if url is not None:
        return url
    from schemas.settings import get_settings

    configured = get_settings().inbound_imap_url
    return configured.get_secret_value() if configured is not None else None


def main(url: str) -> None:
    """`engage inbox --imap URL`: the URL and the reply secret are checked before anything starts (exit 2)."""
    from adapters.logging import configure_logging
    from schemas.settings import get_settings

    parsed = parse_imap_url(url)
    settings = get_settings()
    settings.refuse_production_secret("error")
    configure_logging(settings.log_format)
    asyncio.run(serve(settings, parsed))

