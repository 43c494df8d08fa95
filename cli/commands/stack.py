"""Running the parts: `engage dev` (the embedded stack), and `engage web`, `engage worker`, `engage inbox` alone;
`engage inbox explain` shows how a reply is read. The stack's options are shared with `engage demo`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cli.app import console, emit_json
from cli.errors import BadInput, guarded

commands = typer.Typer()
# `engage inbox` runs the inbound server; `engage inbox explain` shows how a reply is read.
inbox_app = typer.Typer()

# The embedded stack's options, shared by `dev` and `demo`.
DATA_DIR = typer.Option(Path("var"), "--data-dir", help="where every part keeps its data")
TEMPORAL_PORT = typer.Option(7233, "--temporal-port", help="Temporal gRPC port")
UI_PORT = typer.Option(8233, "--ui-port", help="Temporal UI port")
POSTGRES_PORT = typer.Option(55432, "--postgres-port", help="embedded Postgres port")
SMTP_PORT = typer.Option(8025, "--smtp-port", help="SMTP sink port")
CALDAV_PORT = typer.Option(5232, "--caldav-port", help="Radicale (CalDAV) port")
INBOUND_PORT = typer.Option(8026, "--inbound-port", help="inbound mail (replies) port")
WEB_PORT = typer.Option(8027, "--web-port", help="check-in page (engage web) port")


@commands.command()
def dev(
    data_dir: Path = DATA_DIR,
    temporal_port: int = TEMPORAL_PORT,
    ui_port: int = UI_PORT,
    postgres_port: int = POSTGRES_PORT,
    smtp_port: int = SMTP_PORT,
    caldav_port: int = CALDAV_PORT,
    inbound_port: int = INBOUND_PORT,
    web_port: int = WEB_PORT,
) -> None:
    """Run the embedded stack in the foreground: Temporal + UI, Postgres, SMTP sink, CalDAV, the worker, the
    inbound mail server for replies, and the check-in page."""
    from devstack.stack import DevStack, Ports, run_foreground

    ports = Ports(temporal=temporal_port, ui=ui_port, postgres=postgres_port, smtp=smtp_port, caldav=caldav_port,
                  inbound=inbound_port, web=web_port)
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
