"""Exit codes of the contract: 2 bad input, 3 a service cannot be reached, 1 anything unexpected.
Each is one line on stderr, never a traceback (set ENGAGE_DEBUG=1 to see one)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class BadInput(Exception):
    """Exit 2: the message names the field or the reason."""


def fail(code: int, message: str) -> NoReturn:
    sys.stderr.write(f"error: {one_terminal_line(message)}\n")
    raise SystemExit(code)


def one_terminal_line(message: str) -> str:
    """One line, and plain text on any terminal: a message may echo what a file held, so line breaks fold to
    spaces and other control characters (ESC of a colour or cursor sequence, C1 codes) are shown escaped."""
    folded = " ".join(message.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in folded)


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body and turn every failure into its exit code and one line."""
    from pydantic import ValidationError

    try:
        return fn()
    except SystemExit:
        raise
    except BadInput as exc:
        fail(2, str(exc))
    except ValidationError as exc:
        from schemas.common import one_line

        fail(2, one_line(exc))
    except KeyboardInterrupt:
        fail(130, "interrupted")
    except Exception as exc:  # noqa: BLE001 - the last line of defence of a CLI
        code, message = classify(exc)
        if os.environ.get("ENGAGE_DEBUG"):
            raise
        fail(code, message)


def classify(exc: Exception) -> tuple[int, str]:
    from adapters.imap_inbox import ImapUnavailable, ImapUrlError
    from adapters.temporal import TemporalUnavailable
    from devstack.process import PortInUse
    from store.db import DatabaseUnavailable

    if isinstance(exc, TemporalUnavailable | DatabaseUnavailable | PortInUse | ImapUnavailable):
        return 3, str(exc)
    if isinstance(exc, ImapUrlError):
        return 2, str(exc)
    try:
        from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
        from temporalio.service import RPCError, RPCStatusCode

        if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
            # Temporal answered, but no worker took the update in time.
            return 3, ("the engagement's worker did not answer in time; is a worker running? "
                       "start one with `engage dev` or `engage worker`")

        if isinstance(exc, WorkflowUpdateFailedError):
            cause: Any = exc.cause
            while getattr(cause, "cause", None) is not None:
                cause = cause.cause
            return 2, str(getattr(cause, "message", None) or cause or exc)
        if isinstance(exc, RPCError):
            if exc.status == RPCStatusCode.NOT_FOUND:
                return 2, f"not found: {exc.message}"
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                return 3, f"Temporal is unavailable ({exc.message}); start the embedded stack with `engage dev`"
    except ImportError:
        pass
    return 1, f"unexpected {type(exc).__name__}: {exc}"
