"""`engage inbox explain FILE.eml [--json]` through the real executable: how a reply would be read, with no
service running; bad input is exit 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.reply_reading import Explained

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "replies"
ENGAGE = [sys.executable, "-m", "cli.main"]


def engage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENGAGE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_json_has_the_own_text_and_the_reading() -> None:
    done = engage("inbox", "explain", str(CORPUS / "outlook-desktop-de-decimal.eml"), "--json")
    assert done.returncode == 0, done.stderr
    explained = Explained.model_validate(json.loads(done.stdout))
    assert explained.own_text == "1.250,5"  # "Viele Grüße / Ben" and the quoted check-in are gone
    assert explained.reading.kind == "value" and explained.reading.value == 1250.5


def test_a_reply_with_no_answer_says_why() -> None:
    done = engage("inbox", "explain", str(CORPUS / "gmail-en-guess.eml"))
    assert done.returncode == 0, done.stderr
    assert "Own text:\n  about forty, I think\n" in done.stdout
    assert "Reading: nothing read: the first line 'about forty, I think' is not a number" in done.stdout


def test_a_value_and_its_note_are_shown() -> None:
    done = engage("inbox", "explain", str(CORPUS / "gmail-en-note.eml"))
    assert done.returncode == 0, done.stderr
    assert "Reading: value 40\nNote: no need to snooze me\n" in done.stdout


@pytest.mark.parametrize(("path", "problem"),
                         [("missing.eml", "no such file"), ("tests/replies", "not a regular file")])
def test_bad_input_is_exit_2_with_one_line(path: str, problem: str) -> None:
    done = engage("inbox", "explain", path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and problem in done.stderr and path in done.stderr
    assert done.stdout == ""


def test_inbox_is_a_group_with_explain() -> None:
    done = engage("inbox", "--help")
    assert done.returncode == 0
    assert "explain" in done.stdout and "--imap" in done.stdout
