"""The `engage` command (its contract: docs/architecture.md, "The `engage` command"): the app of cli/app.py with
the commands of cli/commands/, in the order `engage --help` lists them. Heavy modules are imported inside
commands, so `--help` is fast."""

from __future__ import annotations

from cli.app import app
from cli.commands import follow_through, outcomes, planning, reads, scoping, stack, tryout

app.add_typer(stack.commands)  # dev, web, worker
app.add_typer(scoping.commands)  # recommend, start
app.add_typer(planning.commands)  # choose, schedule
app.add_typer(follow_through.commands)  # checkin, snooze, block, cancel
app.add_typer(reads.commands)  # status, agenda, list, timeline, report
app.add_typer(tryout.commands)  # preview, demo
app.add_typer(planning.preread_app, name="preread")  # add, ack
app.add_typer(outcomes.session_app, name="session")  # record
app.add_typer(stack.inbox_app, name="inbox")  # the inbound server; explain


def main() -> None:
    app()


if __name__ == "__main__":
    main()
