"""Hostile text and hostile files through the real `engage` executable.

1. Text people typed is never terminal markup: one engagement whose client, names, titles, units, notes and
   reasons are Rich markup (`[/bold]`, `[red]x[/]`, `[link=http://evil]y[/link]`, `[bold`) goes through every
   command that prints user text, each exiting 0 with the text shown as typed (issue 15: `Acme [/bold] Corp`
   crashed `engage recommend`, and `engage list` for everyone once such an engagement existed).
2. The input loader names the field and the line of an impossible date, an oversized integer and a duplicate
   key, and refuses anything that is not a regular file (a named pipe, a socket, a directory, /dev/null) at once:
   exit 2, exactly one line on stderr, no traceback, within 2 s. Temporal and Postgres point at ports nothing
   listens on, so exit 2 also proves the file was refused before any service was asked.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.errors import one_terminal_line
from devstack.process import free_port
from schemas.events import Phase
from tests import test_cli
from tests.conftest import unique_id
from tests.test_cli import (
    CLIENT_TZ,
    ENGAGE,
    EXAMPLES,
    Run,
    bad_input,
    clean_env,
    engage,
    status,
    wait_status,
    write_yaml,
)

cli_env = test_cli.cli_env  # the fixture: a worker, and `engage` pointed at it and the test services
TIME_LIMIT = 2.0  # seconds of CPU: the limit issue 15 sets for refusing a bad input file


# --- 1. user text is never markup ----------------------------------------------------------------------------

CLIENT = "Acme [/bold] Corp [red]x[/] [link=http://evil]y[/link] [bold"
CONSULTANT = "Dana [red]R[/]"
SPONSOR = "Sam [link=http://evil]O[/link]"
PARTICIPANT = "Ana [/] Lima"
OBJECTIVE = "Rebuild trust [bold"
PREREAD = "Memo [/bold] [link=http://evil]read me[/link]"
REASON = "[/] they asked :smile:"
TITLE = "Launch [/] the [bold]tier"
OWNER = "Ben [red]W[/]"
METRIC = "[link=http://evil]Signups[/link]"
UNIT = "[/bold]signups"
DECISION = "[/bold] Consolidate the teams"
OPTION = "[link=http://evil]Nordics[/link]"
NOTE = "[bold first week"
BLOCKED = "[/] legal [red]sign-off[/]"
CANCELLED = "[red]postponed[/] :x:"


def hostile_scoping(engagement_id: str) -> dict[str, Any]:
    today = datetime.now(CLIENT_TZ).date()
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    data.update(id=engagement_id, client=CLIENT)
    data["consultant"]["name"] = CONSULTANT
    data["sponsor"]["name"] = SPONSOR
    data["participants"][0]["name"] = PARTICIPANT
    data["objectives"][0]["text"] = OBJECTIVE
    data["constraints"].update(earliest=today.isoformat(), latest=(today + timedelta(days=30)).isoformat())
    # Whole days: no check-in comes during the test, and no setting is needed to go below the minimum cadence.
    data["follow_through"] = {"cadence": "1d", "horizon": "30d", "escalate_after_missed": 2}
    return data


def hostile_outcomes() -> dict[str, Any]:
    today = datetime.now(CLIENT_TZ).date()
    data = yaml.safe_load((EXAMPLES / "outcomes.yaml").read_text())
    data.pop("held_on", None)
    data["decisions"] = [DECISION]
    data["dot_votes"][0]["option"] = OPTION
    first = data["actions"][0]
    first.update(title=TITLE, due=(today + timedelta(days=10)).isoformat())
    first["owner"]["name"] = OWNER
    first["metric"].update(name=METRIC, unit=UNIT)
    data["actions"][1]["due"] = (today + timedelta(days=20)).isoformat()
    return data


def shows(result: Run, *texts: str) -> None:
    """Exit 0, no traceback, and every text as typed (not styled away, not a link, not an emoji)."""
    assert result.code == 0, str(result)
    assert "Traceback" not in result.out + result.err, str(result)
    for text in texts:
        assert text in result.out, f"{text!r} not shown as typed:\n{result}"


@pytest.fixture(scope="module")
def wide_env(cli_env: dict[str, str]) -> dict[str, str]:
    # Wide enough that no table wraps a cell: the assertions look for each text on one line.
    return {**cli_env, "COLUMNS": "500"}


async def test_every_command_shows_markup_as_typed(wide_env: dict[str, str], tmp_path: Path) -> None:
    env = wide_env
    eid = unique_id("markup")
    scoping_file = write_yaml(tmp_path / "scoping.yaml", hostile_scoping(eid))
    outcomes_file = write_yaml(tmp_path / "outcomes.yaml", hostile_outcomes())

    shows(await engage(env, "recommend", str(scoping_file)), CLIENT)
    shows(await engage(env, "agenda", str(scoping_file)), CLIENT)
    shows(await engage(env, "start", str(scoping_file)), eid, CLIENT)
    shows(await engage(env, "choose", eid, "--format", "strategy_session", "--reason", REASON), eid)
    # The pre-read before the session is scheduled: on a busy machine two commands can take longer than the
    # seconds to the session, and a pre-read is refused once it has started.
    shows(await engage(env, "preread", "add", eid, "--title", PREREAD, "--url", "https://example.com/memo",
                       "--days-before", "1"), PREREAD)
    shows(await engage(env, "preread", "ack", eid, "--participant", "ana@acme.example"), "ana@acme.example")
    # The session a few seconds ahead (HH:MM:SS), so that outcomes can be recorded without waiting a minute.
    session_start = (datetime.now(CLIENT_TZ) + timedelta(seconds=12)).replace(microsecond=0)
    shows(await engage(env, "schedule", eid, "--on", session_start.date().isoformat(),
                       "--at", session_start.strftime("%H:%M:%S"), "--days", "0.5"), eid)
    shows(await engage(env, "status", eid), CLIENT, PREREAD)
    shows(await engage(env, "agenda", eid), CLIENT)
    # `list` shows every engagement of the database: one named with markup must not break it for the others.
    shows(await engage(env, "list"), CLIENT)

    await asyncio.sleep(max(0.0, (session_start - datetime.now(CLIENT_TZ)).total_seconds()))
    await wait_status(env, eid, "in session", lambda s: s.phase is Phase.session)
    shows(await engage(env, "session", "record", eid, str(outcomes_file)), "A1", "A2")
    await wait_status(env, eid, "following through", lambda s: s.phase is Phase.follow_through
                      and len(s.actions) == 2 and all(a.next_checkin_at is not None for a in s.actions))
    shows(await engage(env, "checkin", eid, "--action", "A1", "--value", "40", "--note", NOTE), UNIT)
    shows(await engage(env, "snooze", eid, "--action", "A2", "--days", "3"), "A2")
    shows(await engage(env, "block", eid, "--action", "A2", "--reason", BLOCKED), BLOCKED)
    shows(await engage(env, "status", eid), CLIENT, PREREAD, TITLE, OWNER, UNIT)
    shows(await engage(env, "timeline", eid), "metric_reported", "action_blocked")
    # The markdown report is markdown (cli/report/markdown.py), written as it is: no markup is read from it either.
    shows(await engage(env, "report", eid), CLIENT, CONSULTANT, SPONSOR, TITLE, OWNER, METRIC, UNIT, DECISION,
          OPTION, NOTE)
    html_file = tmp_path / "report.html"
    shows(await engage(env, "report", eid, "--format", "html", "-o", str(html_file)), str(html_file))

    shows(await engage(env, "cancel", eid, "--reason", CANCELLED), eid)
    await wait_status(env, eid, "cancelled", lambda s: s.phase is Phase.cancelled)
    shows(await engage(env, "status", eid), CLIENT, CANCELLED)
    shows(await engage(env, "list", "--phase", "cancelled"), CLIENT)
    assert (await status(env, eid)).client == CLIENT

    # preview: the real workflow on the time-skipping server; the mails' subjects carry the client's name.
    shows(await engage(env, "preview", str(scoping_file), "--outcomes", str(outcomes_file), timeout=120), CLIENT)


async def test_an_error_line_shows_markup_as_typed(cli_env: dict[str, str]) -> None:
    nobody = "[/bold]"
    line = bad_input(await engage(cli_env, "status", nobody), "unknown engagement", nobody)
    assert "'[/bold]'" in line


def test_inbox_explain_shows_the_reply_as_typed(tmp_path: Path) -> None:
    eml = tmp_path / "reply.eml"
    eml.write_text("From: ben@acme.example\nTo: reply@engage.example\nSubject: Re: check-in\n\n"
                   "42 [/bold] [red]done[/] [link=http://evil]y[/link]\n", encoding="utf-8")
    proc = subprocess.run([ENGAGE, "inbox", "explain", str(eml)], env=clean_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "42 [/bold] [red]done[/] [link=http://evil]y[/link]" in proc.stdout


def test_an_error_line_is_one_plain_line() -> None:
    """What `fail` writes: a file's content echoed in an error cannot colour, move or clear the terminal."""
    line = one_terminal_line("bad \x1b[2J\x1b]8;;http://evil\x07value\nnext \x9b31m [/bold]")
    assert line == "bad \\x1b[2J\\x1b]8;;http://evil\\x07value next \\x9b31m [/bold]"


MARKUP_TAG = re.compile(r"\[/?(?:bold|italic|dim|red|green|yellow|cyan|blue|link|reverse|underline)?[^\]\[]*\]")


def test_the_cli_has_one_console_and_prints_no_markup() -> None:
    """What keeps it so: one Console, made by cli.views.terminal (markup off), and no string that would be markup
    if it were on, in what the CLI prints: our styles go as Text spans."""
    printing = {"print", "add_row", "add_column", "Panel", "Table", "status", "from_markup", "styled", "Text"}
    consoles: list[str] = []
    for path in sorted((test_cli.ROOT / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "Console":
                consoles.append(f"{path.name}:{node.lineno}")
            if name == "from_markup":
                raise AssertionError(f"{path.name}:{node.lineno}: Text.from_markup reads markup")
            if name in printing:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    for part in ast.walk(arg):
                        if isinstance(part, ast.Constant) and isinstance(part.value, str):
                            assert not MARKUP_TAG.search(part.value), f"{path.name}:{part.lineno}: {part.value!r}"
    assert consoles == [f"views.py:{_line('cli/views.py', 'return Console(')}"], consoles


def _line(relative: str, needle: str) -> int:
    return line_of((test_cli.ROOT / relative).read_text(encoding="utf-8"), needle)


# --- 2. hostile input files ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dead_env() -> dict[str, str]:
    return clean_env(ENGAGE_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
                     ENGAGE_DATABASE_URL=f"postgresql://engage@127.0.0.1:{free_port()}/engage")


def run_timed(env: dict[str, str], *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """`engage` with the CPU time it used (user + system); killed (and the test failed) if it hangs, as on a named
    pipe it would. CPU time, not wall time: a busy machine makes the command wait, not work more, and the test
    must pass on one (the wall time is printed beside it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        proc = subprocess.run([ENGAGE, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"engage {' '.join(args)} still running after 20 s") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"wall {time.monotonic() - started:.2f} s, cpu {cpu:.2f} s")
    return proc, cpu


def refused_at_once(env: dict[str, str], *args: str, named: tuple[str, ...], cwd: Path) -> str:
    """Exit 2, exactly one line on stderr naming every `named`, no traceback, within TIME_LIMIT."""
    proc, seconds = run_timed(env, *args, cwd=cwd)
    shown = f"engage {' '.join(args)}: exit {proc.returncode} after {seconds:.2f} s of CPU\n" \
            f"stdout: {proc.stdout[:2000]}\nstderr: {proc.stderr[:2000]}"
    assert proc.returncode == 2, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, shown
    for name in named:
        assert name in lines[0], shown
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    assert seconds < TIME_LIMIT, shown
    print(f"{' '.join(args[:2])}: {seconds:.2f} s: {lines[0]}")
    return lines[0]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line containing `needle`."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[occurrence - 1]


SCOPING = (EXAMPLES / "scoping.yaml").read_text()
OUTCOMES = (EXAMPLES / "outcomes.yaml").read_text()
HUGE = "9" * 5000  # str(int) and int(str) refuse more than 4,300 digits (ValueError)


def _swap(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# name -> (file text, the line's needle and occurrence, words the error line names)
SCOPING_CASES: dict[str, tuple[str, tuple[str, int], tuple[str, ...]]] = {
    "impossible_date": (_swap(SCOPING, "earliest: 2027-02-01", "earliest: 2027-02-30"), ("earliest:", 1),
                        ("constraints.earliest", "2027-02-30", "not a date")),
    "year_zero": (_swap(SCOPING, "earliest: 2027-02-01", "earliest: 0000-01-01"), ("earliest:", 1),
                  ("constraints.earliest", "0000-01-01", "not a date")),
    "huge_integer": (_swap(SCOPING, "max_days: 2 ", f"max_days: {HUGE} "), ("max_days:", 1),
                     ("constraints.max_days", "out of range")),
    "duplicate_key": (_swap(SCOPING, "timezone: Europe/Berlin  ", "client: Evil Corp\ntimezone: Europe/Berlin  "),
                      ("client:", 2), ("client", "given twice", "line 4")),
    "duplicate_nested_key": (_swap(SCOPING, "{name: Ben Wu, email:", "{name: Ben Wu, name: Bob, email:"),
                             ("name: Bob", 1), ("participants.1.name", "given twice")),
    # A model error points at its field's line too.
    "not_a_number": (_swap(SCOPING, "max_days: 2 ", "max_days: lots "), ("max_days:", 1),
                     ("constraints.max_days", "number")),
}

OUTCOMES_CASES: dict[str, tuple[str, tuple[str, int], tuple[str, ...]]] = {
    "impossible_date": (_swap(OUTCOMES, "due: 2027-05-31", "due: 2027-02-30"), ("due:", 1),
                        ("actions.0.due", "2027-02-30", "not a date")),
    "year_zero": (_swap(OUTCOMES, "held_on: 2027-02-11", "held_on: 0000-01-01"), ("held_on:", 1),
                  ("held_on", "0000-01-01", "not a date")),
    "huge_integer": (_swap(OUTCOMES, "votes: 7}", f"votes: {HUGE}}}"), ("votes: 9", 1),
                     ("dot_votes.0.votes", "out of range")),
    "duplicate_key": (_swap(OUTCOMES, "  - title: Cut onboarding time\n",
                            "  - title: Cut onboarding time\n    title: Something else\n"),
                      ("title: Something else", 1), ("actions.1.title", "given twice")),
}


@pytest.mark.parametrize("command", ["recommend", "start", "preview"])
@pytest.mark.parametrize("case", list(SCOPING_CASES))
def test_a_bad_scoping_value_names_field_and_line(case: str, command: str, dead_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    text, (needle, occurrence), named = SCOPING_CASES[case]
    path = tmp_path / "scoping.yaml"
    path.write_text(text, encoding="utf-8")
    where = f"{path}:{line_of(text, needle, occurrence)}: "
    refused_at_once(dead_env, command, str(path), named=(where, *named), cwd=tmp_path)


@pytest.mark.parametrize("case", list(OUTCOMES_CASES))
def test_a_bad_outcomes_value_names_field_and_line(case: str, dead_env: dict[str, str], tmp_path: Path) -> None:
    text, (needle, occurrence), named = OUTCOMES_CASES[case]
    path = tmp_path / "outcomes.yaml"
    path.write_text(text, encoding="utf-8")
    where = f"{path}:{line_of(text, needle, occurrence)}: "
    refused_at_once(dead_env, "session", "record", "some-engagement", str(path), named=(where, *named),
                    cwd=tmp_path)


@pytest.fixture
def not_files() -> Iterator[dict[str, tuple[str, str]]]:
    """A named pipe nobody writes to, a listening socket, a directory and a device: path and what it is."""
    # A short directory: a socket's path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="engage-"))
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    sock_path = folder / "sock.yaml"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    directory = folder / "dir.yaml"
    directory.mkdir()
    try:
        yield {"fifo": (str(fifo), "a named pipe"), "socket": (str(sock_path), "a socket"),
               "directory": (str(directory), "a directory"), "dev_null": ("/dev/null", "a character device"),
               "dev_zero": ("/dev/zero", "a character device")}
    finally:
        server.close()
        for path in (fifo, sock_path):
            path.unlink()
        directory.rmdir()
        folder.rmdir()


KINDS = ["fifo", "socket", "directory", "dev_null", "dev_zero"]
FILE_COMMANDS: dict[str, tuple[str, ...]] = {
    "recommend": ("recommend", "{}"), "start": ("start", "{}"), "preview": ("preview", "{}"),
    "preview_outcomes": ("preview", str(EXAMPLES / "scoping.yaml"), "--outcomes", "{}"),
    "session_record": ("session", "record", "some-engagement", "{}"),
}


@pytest.mark.parametrize("command", list(FILE_COMMANDS))
@pytest.mark.parametrize("kind", KINDS)
def test_anything_but_a_regular_file_is_refused_at_once(kind: str, command: str, not_files: dict[str, Any],
                                                        dead_env: dict[str, str], tmp_path: Path) -> None:
    path, what = not_files[kind]
    args = tuple(a.replace("{}", path) for a in FILE_COMMANDS[command])
    refused_at_once(dead_env, *args, named=(path, what, "not a regular file"), cwd=tmp_path)


def test_a_pipe_with_a_writer_is_refused_too(dead_env: dict[str, str], tmp_path: Path) -> None:
    """Even a pipe that would deliver a valid document: its content could be endless, or never come."""
    fifo = tmp_path / "scoping.yaml"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'w').write({SCOPING!r})"])
    try:
        refused_at_once(dead_env, "recommend", str(fifo), named=("a named pipe", "not a regular file"), cwd=tmp_path)
    finally:
        # Release the writer blocked in open(): open the read end once, then reap it.
        with open(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK), "rb", closefd=True) as reader:
            writer.wait(timeout=10)
            reader.read()
