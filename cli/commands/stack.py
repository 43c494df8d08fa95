"""Running the parts: `engage dev` (the embedded stack), and `engage web`, `engage worker`, `engage inbox` alone;
`engage inbox explain` shows how a reply is read. The stack's options are shared with `engage demo`."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.app import console, emit_json
from cli.errors import BadInput, guarded

if TYPE_CHECKING:
    from devstack.stack import Ports

commands = typer.Typer()
# `engage inbox` runs the inbound server; `engage inbox explain` shows how a reply is read.
inbox_app = typer.Typer()

# The embedded stack's options, shared by `dev` and `demo` (`stack_options`): `--data-dir`, then one `--NAME-port`
# per field of devstack.stack.Ports, in this order.
DATA_DIR = typer.Option(Path("var"), "--data-dir", help="where every part keeps its data")
PORT_OPTIONS = (
    ("temporal", 7233, "Temporal gRPC port"),
    ("ui", 8233, "Temporal UI port"),
    ("postgres", 55432, "embedded Postgres port"),
    ("smtp", 8025, "SMTP sink port"),
    ("caldav", 5232, "Radicale (CalDAV) port"),
    ("inbound", 8026, "inbound mail (replies) port"),
    ("web", 8027, "check-in page (engage web) port"),
)


def stack_options(command: Callable[..., None]) -> Callable[..., None]:
    """A command `command(data_dir, ports, ...)` with the stack's options before its own: typer sees `--data-dir`
    and the `--NAME-port` options; the command gets `data_dir` and the ports as one devstack.stack.Ports."""
    own = [param for param in inspect.signature(command).parameters.values()
           if param.name not in ("data_dir", "ports")]
    stack = [inspect.Parameter("data_dir", inspect.Parameter.KEYWORD_ONLY, default=DATA_DIR, annotation=Path)]
    stack += [inspect.Parameter(f"{name}_port", inspect.Parameter.KEYWORD_ONLY, annotation=int,
                                default=typer.Option(default, f"--{name}-port", help=help))
              for name, default, help in PORT_OPTIONS]
    params = stack + [param.replace(kind=inspect.Parameter.KEYWORD_ONLY) for param in own]

    @functools.wraps(command)
    def with_stack(**options: Any) -> None:
        from devstack.stack import Ports

        ports = Ports(**{name: options.pop(f"{name}_port") for name, _, _ in PORT_OPTIONS})
        command(data_dir=options.pop("data_dir"), ports=ports, **options)

    with_stack.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    with_stack.__annotations__ = {param.name: param.annotation for param in params} | {"return": None}
    return with_stack


@commands.command()
@stack_options
def dev(data_dir: Path, ports: Ports) -> None:
    """Run the embedded stack in the foreground: Temporal + UI, Postgres, SMTP sink, CalDAV, the worker, the
    inbound mail server for replies, and the check-in page."""
    from devstack.stack import DevStack, run_foreground

    terminal = console()

    def echo(part: str, address: str) -> None:
        from cli.views import styled

        terminal.print(styled(("✓", "bold green"), f" {part:<12} {address}"))

    guarded(lambda: run_foreground(DevStack(data_dir, ports, echo=echo)))


@commands.command()
def web() -> None:
    """Run the check-in page alone: owners open the signed link in a check-in mail and answer there
    (ENGAGE_WEB_HOST, ENGAGE_WEB_PORT; links point at ENGAGE_PUBLIC_URL)."""
    from adapters.web import main as web_main

    guarded(web_main)


@commands.command()
def worker() -> None:
    """Run the worker alone (same as `python worker.py`)."""
    import worker as worker_module

    guarded(lambda: worker_module.main([]))


@inbox_app.callback(invoke_without_command=True)
def inbox(
    ctx: typer.Context,
    imap: str | None = typer.Option(
        None, "--imap", metavar="URL",
        help="read replies from an IMAP mailbox instead of running the SMTP server (no MX needed): "
             "imaps://user:password@host:993/INBOX (TLS), or imap://... (plain, STARTTLS when the server "
             "offers it). Handled mail moves to ?processed=FOLDER (default engage-processed); IDLE when "
             "offered, else a look every ?poll=SECONDS (30). Default: ENGAGE_INBOUND_IMAP_URL, which keeps "
             "the password off the command line"),
) -> None:
    """Run the inbound mail server alone: replies to check-in and pre-read mails become workflow updates."""
    if ctx.invoked_subcommand is not None:
        return  # a subcommand (explain) runs instead of the server
    def run() -> None:
        from adapters.imap_inbox import configured_url
        from adapters.imap_inbox import main as imap_main
        from adapters.inbound_server import main as inbox_main

        url = configured_url(imap)
        imap_main(url) if url is not None else inbox_main()

    guarded(run)


@inbox_app.command("explain")
def inbox_explain(
    eml: Path = typer.Argument(..., metavar="FILE.eml", help="one reply as the raw message (e.g. saved as .eml)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object: own_text and reading"),
) -> None:
    """How a reply would be read, for support: the owner's own text (quotes, forwarded mail and signature
    removed) and the reading, or why there is none. Nothing is sent or changed."""

    def load() -> bytes:
        if not eml.exists():
            raise BadInput(f"{eml}: no such file")
        if not eml.is_file():
            raise BadInput(f"{eml}: not a regular file")
        if eml.stat().st_size > 25 * 1024 * 1024:
            raise BadInput(f"{eml}: larger than 25 MiB, not a reply")
        try:
            return eml.read_bytes()
        except OSError as exc:
            raise BadInput(f"{eml}: cannot read it ({exc.strerror or exc})") from exc

    raw = guarded(load)
    from adapters.reply_reading import explain

    explained = guarded(lambda: explain(raw))
    if as_json:
        emit_json(explained)
        return
    reading = explained.reading
    shown = {"value": f"value {reading.value:g}" if reading.value is not None else "",
             "snooze": f"snooze {reading.days} days", "blocked": f"blocked: {reading.reason}",
             "ack": "read/done (acknowledged)", "none": f"nothing read: {reading.why}"}[reading.kind]
    own = explained.own_text
    sys.stdout.write("Own text:\n" + ("\n".join("  " + line for line in own.split("\n")) if own else "  (none)")
                     + f"\nReading: {shown}\n" + (f"Note: {reading.note}\n" if reading.note else ""))
