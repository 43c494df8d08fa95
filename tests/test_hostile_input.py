"""The real `engage` executable fed hostile input files: exit 2, one line on stderr, no traceback, and bounded
time and memory.

Temporal and Postgres point at ports nothing listens on: a command that got past its input would exit 3, so
exit 2 proves the file was refused before any service was asked. `tests/test_cli.py` already covers the
malformed, unknown-field, bad-email, unknown-zone, over-1-MiB, binary, billion-laughs and top-level-list files
for `recommend` and `start`; this module adds deep nesting, a Python object tag, an empty file, a directory, a
missing path, /dev/zero and wrong types, and measures the time and peak memory of the big documents.

Peak memory: a child forked from the test process counts the test process's pages until its exec, and
RUSAGE_CHILDREN is the maximum over every child (Postgres and Temporal servers included). So each run goes
through a small Python launcher that forks `engage` from itself, reaps it with `os.wait4` and writes that one
child's peak RSS to a file: the figure is `engage`'s own, plus at most the launcher's few MiB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from devstack.process import free_port

ROOT = Path(__file__).resolve().parent.parent
ENGAGE = str(Path(sys.executable).parent / "engage")
EXAMPLES = ROOT / "examples"

TIME_LIMIT = 10.0  # seconds, per run
MEMORY_LIMIT = 300 * 1024 * 1024  # bytes of peak RSS, per run


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    max_rss: int  # bytes

    def __str__(self) -> str:
        return (f"exit {self.code} after {self.seconds:.2f} s, peak RSS {self.max_rss / 2**20:.0f} MiB\n"
                f"stdout: {self.out[:2000]}\nstderr: {self.err[:2000]}")


@pytest.fixture(scope="module")
def dead_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(ENGAGE_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
               ENGAGE_DATABASE_URL=f"postgresql://engage@127.0.0.1:{free_port()}/engage",
               COLUMNS="200")
    return env


LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def engage(env: dict[str, str], *args: str, cwd: Path) -> Run:
    """Run `engage` (killed with its launcher after TIME_LIMIT); its own peak RSS."""
    rss_file = cwd / ".peak-rss"
    started = time.monotonic()
    with subprocess.Popen([sys.executable, "-c", LAUNCHER, str(rss_file), ENGAGE, *args], env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher's session: the launcher and engage
            proc.communicate()
            raise AssertionError(f"engage {' '.join(args)} still running after {TIME_LIMIT} s") from None
    seconds = time.monotonic() - started
    max_rss = int(rss_file.read_text()) * 1024  # ru_maxrss is in KiB on Linux
    rss_file.unlink()
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), seconds, max_rss)


def refused(run: Run, *named: str) -> str:
    """Exit 2, exactly one line on stderr naming every `named`, no traceback, within time and memory."""
    assert run.seconds < TIME_LIMIT, str(run)
    assert run.code == 2, str(run)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, str(run)
    for name in named:
        assert name in lines[0], str(run)
    assert "Traceback" not in run.out + run.err, str(run)
    assert run.max_rss < MEMORY_LIMIT, str(run)
    return lines[0]


def _scoping(**changes: object) -> str:
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for key in parents:
            target = target[key]
        target[last] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _outcomes(**changes: object) -> str:
    data = yaml.safe_load((EXAMPLES / "outcomes.yaml").read_text())
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


DEPTH = 100_000
NESTED_LIST = "[" * DEPTH + "]" * DEPTH + "\n"
NESTED_MAP = "client: " + "{a: " * DEPTH + "1" + "}" * DEPTH + "\n"
NESTED_BLOCK = "- " * DEPTH + "x\n"  # block style: - - - - x
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]
) + "\n"


def python_tag(marker: Path) -> str:
    # With yaml.load (not safe_load) this would run a shell command that creates `marker`.
    return f'!!python/object/apply:os.system ["touch {marker}"]\n'


# name -> (file content, or None for "the path is a directory" / "the path does not exist"; words the line names)
SCOPING_CASES: dict[str, tuple[str | bytes | None, tuple[str, ...]]] = {
    "nested_list": (NESTED_LIST, ("nested too deeply",)),
    "nested_map": (NESTED_MAP, ("nested too deeply",)),
    "nested_block": (NESTED_BLOCK, ("nested too deeply",)),
    "empty": ("", ("expected a YAML mapping",)),
    "only_a_comment": ("# nothing here\n", ("expected a YAML mapping",)),
    "max_days_lots": (_scoping(constraints__max_days="lots"), ("constraints.max_days", "number")),
    "participants_7": (_scoping(participants=7), ("participants", "list")),
    "objectives_string": (_scoping(objectives="all of them"), ("objectives", "list")),
    "timezone_number": (_scoping(timezone=1), ("timezone",)),
}


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# Every case through `recommend`; through `start` (which would go on to Temporal) a case of each kind. The big
# nested list goes through `recommend` in the bounds test below.
SCOPING_RUNS = [(case, "recommend") for case in SCOPING_CASES if case != "nested_list"] + [
    (case, "start") for case in ("nested_list", "empty", "max_days_lots", "participants_7")]


@pytest.mark.parametrize(("case", "command"), SCOPING_RUNS)
def test_a_hostile_scoping_file_is_exit_2_and_one_line(case: str, command: str, dead_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    content, named = SCOPING_CASES[case]
    assert content is not None
    path = write(tmp_path / f"{case}.yaml", content)
    refused(engage(dead_env, command, str(path), cwd=tmp_path), *named)


@pytest.mark.parametrize("command", ["recommend", "start"])
def test_a_python_object_tag_is_refused_and_never_run(command: str, dead_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path / "tagged.yaml", python_tag(marker))
    line = refused(engage(dead_env, command, str(path), cwd=tmp_path), "malformed YAML", "tag")
    assert "python/object/apply" in line
    assert not marker.exists(), "the tag ran a command"


@pytest.mark.parametrize("command", ["recommend", "start"])
def test_a_directory_a_missing_path_and_dev_zero_are_refused(command: str, dead_env: dict[str, str],
                                                             tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    refused(engage(dead_env, command, str(folder), cwd=tmp_path), str(folder), "cannot read", "directory")
    missing = tmp_path / "nowhere.yaml"
    refused(engage(dead_env, command, str(missing), cwd=tmp_path), str(missing), "cannot read", "No such file")
    if command == "recommend":
        # A device (an endless stream) is refused before it is opened: only regular files are read.
        refused(engage(dead_env, command, "/dev/zero", cwd=tmp_path), "/dev/zero", "not a regular file")


OUTCOMES_CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "nested_list": (NESTED_LIST, ("nested too deeply",)),
    "empty": ("", ("expected a YAML mapping",)),
    "actions_7": (_outcomes(actions=7), ("actions", "list")),
    "due_soon": (_outcomes(actions=[{**yaml.safe_load((EXAMPLES / "outcomes.yaml").read_text())["actions"][0],
                                     "due": "soon"}]), ("actions.0.due", "date")),
    "votes_lots": (_outcomes(dot_votes=[{"option": "x", "votes": "lots"}]), ("dot_votes.0.votes", "integer")),
}


@pytest.mark.parametrize("case", list(OUTCOMES_CASES))
def test_a_hostile_outcomes_file_is_exit_2_and_one_line(case: str, dead_env: dict[str, str], tmp_path: Path) -> None:
    content, named = OUTCOMES_CASES[case]
    path = write(tmp_path / f"{case}.yaml", content)
    refused(engage(dead_env, "session", "record", "some-engagement", str(path), cwd=tmp_path), *named)


def test_outcomes_from_a_directory_or_a_missing_path(dead_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "outcomes.yaml"
    folder.mkdir()
    refused(engage(dead_env, "session", "record", "some-engagement", str(folder), cwd=tmp_path), "directory")
    refused(engage(dead_env, "session", "record", "some-engagement", str(tmp_path / "missing.yaml"),
                   cwd=tmp_path), "No such file")


# The big ones: refused quickly and without the memory their content would cost if it were expanded.
BIG: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "binary_1_mib": (os.urandom(1024 * 1024 - 1), ("not UTF-8",)),
    "two_mib": ("client: Acme\n" + "# " + "x" * (2 * 1024 * 1024) + "\n", ("1 MiB",)),
    "billion_laughs": (BILLION_LAUGHS, ("aliases",)),
    "nested_list": (NESTED_LIST, ("nested too deeply",)),
    # Just under 1 MiB of flat keys, the slowest document the size limit lets through (PyYAML is pure Python
    # here: a few seconds): parsed fully, then refused by the model.
    "many_keys": ("".join(f"k{i}: {i}\n" for i in range(74_000)), ("client: Field required", "more")),
}


@pytest.mark.parametrize("case", list(BIG))
def test_big_documents_are_refused_in_bounded_time_and_memory(case: str, dead_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    content, named = BIG[case]
    path = write(tmp_path / f"{case}.yaml", content)
    assert path.stat().st_size > 100_000 or case == "billion_laughs"
    run = engage(dead_env, "recommend", str(path), cwd=tmp_path)
    refused(run, *named)
    print(f"{case}: {run.seconds:.2f} s, peak RSS {run.max_rss / 2**20:.0f} MiB")
