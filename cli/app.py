"""What every `engage` command shares: the typer app and how it ends (one line and an exit code, cli/errors.py),
the Temporal client and the engagement's updates, the settings, and the output (JSON or the terminal view).
The commands are in cli/commands/, added to the app by cli/main.py."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from cli.errors import BadInput, fail, guarded

if TYPE_CHECKING:
    from pydantic import BaseModel

    from adapters.engagement_client import EngagementHandle, Update

T = TypeVar("T")


class _EngageGroup(TyperGroup):
    """How `engage` ends.

    A usage error (an unknown --format, a missing argument, a value that is not a number) is bad input like any
    other: one line on stderr and exit 2 (cli/errors.py), not click's multi-line usage box.

    Once the Temporal SDK is loaded, the process ends with `os._exit` after flushing stdout and stderr: at
    interpreter finalization the SDK's Rust threads can still touch the GIL and CPython then aborts ("Fatal
    Python error: PyGILState_Release", SIGABRT, temporalio/sdk-python#300), turning an `engage start` that
    succeeded into exit -6 about once in 40 runs.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        kwargs: dict[str, Any] = {"windows_expand_args": windows_expand_args, **extra}
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **kwargs)
        try:
            code = self._main_one_line_errors(args, prog_name, complete_var, kwargs)
        except SystemExit as exc:
            code = exc.code
        _exit(code)

    def _main_one_line_errors(self, args: Sequence[str] | None, prog_name: str | None, complete_var: str | None,
                              kwargs: dict[str, Any]) -> Any:
        # Recent typer vendors click (typer._click); the public BadParameter leads to the ClickException in use.
        click_exception: type[Exception] = next(
            c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **kwargs)
        except click_exception as exc:
            error: Any = exc
            if type(error).__name__ == "NoArgsIsHelpError":
                return error.exit_code  # the help is already printed
            ctx = getattr(error, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            fail(error.exit_code, error.format_message().replace("Value error, ", "") + hint)
        except typer.Abort:
            fail(1, "aborted")


def _exit(code: object) -> NoReturn:
    if "temporalio" not in sys.modules:
        raise SystemExit(code)
    import os

    if isinstance(code, str):  # what SystemExit does with a message
        sys.stderr.write(code + "\n")
    status = code if isinstance(code, int) else 0 if code is None else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (engage list | head) or a closed stream
            pass
    os._exit(status)


app = typer.Typer(
    cls=_EngageGroup,
    help="Run executive engagements (offsites, strategy sessions) from scoping to the last check-in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    import asyncio  # here, not at the top: a quarter second that bad input and --help need not wait for

    return guarded(lambda: asyncio.run(fn()))  # type: ignore[arg-type, return-value]


def emit_json(model: BaseModel) -> None:
    sys.stdout.write(model.model_dump_json() + "\n")


def show(result: BaseModel, as_json: bool, printer: str) -> None:
    """One JSON object on stdout with --json, else the human view `cli.views.<printer>` (imported only then)."""
    if as_json:
        emit_json(result)
        return
    from cli import views

    getattr(views, printer)(console(), result)


def settings() -> Any:
    from schemas.settings import get_settings

    return get_settings()


async def temporal_client() -> Any:
    from adapters.temporal import connect

    return await connect(settings())


async def _handle(engagement_id: str) -> EngagementHandle:
    from adapters.engagement_client import engagement_handle

    return engagement_handle(await temporal_client(), engagement_id)


async def send_update(engagement_id: str, update: Update[T], payload: Any) -> T:
    from temporalio.service import RPCError, RPCStatusCode

    handle = await _handle(engagement_id)
    try:
        return await handle.execute_update(update, payload)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await _not_found(handle, engagement_id) from exc
        raise


async def _not_found(handle: Any, engagement_id: str) -> BadInput:
    """An update finds no running workflow both when there is no such engagement and when it has ended
    (closed or cancelled): only the first is "unknown"."""
    from temporalio.service import RPCError

    from workflows.search_attributes import ENGAGEMENT_PHASE

    try:
        description = await handle.describe()
    except RPCError:
        return BadInput(f"engagement: unknown engagement {engagement_id!r}")
    phase = description.typed_search_attributes.get(ENGAGEMENT_PHASE) or "ended"
    return BadInput(f"engagement: {engagement_id} is {phase}; it takes no more input")


def console() -> Any:
    """The one console (cli.views.terminal): what it prints is never read as markup; styles go as `Text`."""
    from cli.views import terminal

    return terminal()


async def query_status(engagement: str) -> Any:
    """The engagement's status, each action's view included; an unknown engagement is bad input (exit 2)."""
    from temporalio.service import RPCError, RPCStatusCode

    from adapters.engagement_client import engagement_status

    try:
        return await engagement_status(await temporal_client(), engagement)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise BadInput(f"engagement: unknown engagement {engagement!r}") from exc
        raise
