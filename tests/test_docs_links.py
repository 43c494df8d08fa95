"""Every file the documentation names exists: docs/architecture.md (each path, and each file name in backticks),
README.md and docs/*.md (each path into the repository), and the docstrings and comments of the code (each path
into the repository, each `.md` file). A file that moves takes its mentions with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "var",
                "node_modules"}
# The first part of a path into the repository: its top-level files and folders.
TOP_LEVEL = {p.name for p in ROOT.iterdir() if p.name not in SKIPPED_DIRS and not p.name.endswith(".egg-info")}

# `a/b/c.py`, `tests/histories/`, `tests/histories/v1_*`: not part of a URL (`http://x/y`) or of a longer path.
PATH = re.compile(r"(?<![\w./:@-])([\w.-]+(?:/[\w.*-]+)+/?)")
# A file name in backticks: `worker.py`, `docker-compose.yml`.
FILE_NAME = re.compile(r"`([\w.-]+\.(?:py|md|toml|ya?ml|json|sql|j2|css|txt|sh))`")
# A document by its name alone, as documents are named: DESIGN.md, README.md.
MD_NAME = re.compile(r"(?<![\w./-])([A-Z][A-Z_]*\.md)\b")

# Mentions of what a file was at a named commit: history, not a path to follow today.
HISTORICAL = {
    ("docs/BENCHMARKS.md", "adapters/email.py"),  # "adapters/email.py of commit b8afc12", since split
}


def exists(name: str) -> bool:
    name = name.rstrip("/")
    if "*" in name:
        return any(ROOT.glob(name))
    return (ROOT / name).exists()


def anywhere(file_name: str) -> bool:
    return (ROOT / file_name).exists() or any(
        not SKIPPED_DIRS.intersection(p.relative_to(ROOT).parts) for p in ROOT.rglob(file_name))


def repo_paths(text: str) -> set[str]:
    """Paths into the repository: the first part a top-level name, the last a file (`x.py`), a folder (`x/`) or a
    pattern (`v1_*`); `workflows/s` (a rate) and `adapters/reply_reading` (a module) are not paths."""
    found = {m.group(1).rstrip(".") for m in PATH.finditer(text)}
    return {name for name in found if name.split("/")[0] in TOP_LEVEL
            and (name.endswith("/") or "." in name.split("/")[-1] or "*" in name)}


def missing_in(path: Path, text: str) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    return sorted(f"{rel}: {name}" for name in repo_paths(text)
                  if not exists(name) and (rel, name) not in HISTORICAL)


def code_files() -> list[Path]:
    """Every Python file but this one (which names what is missing, as examples)."""
    return sorted(p for p in ROOT.rglob("*.py") if not SKIPPED_DIRS.intersection(p.relative_to(ROOT).parts)
                  and p != Path(__file__).resolve())


def test_architecture_exists_and_names_only_files_that_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    missing = missing_in(ARCHITECTURE, text)
    missing += [f"docs/architecture.md: `{name}`" for name in sorted(set(FILE_NAME.findall(text)))
                if not anywhere(name)]
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)
    for section in ("## The lifecycle", "## Layers", "## Where each concept lives", "## Temporal conventions",
                    "## Patch policy"):
        assert section in text, section


@pytest.mark.parametrize("doc", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_path_a_document_names_exists(doc: Path) -> None:
    missing = missing_in(doc, doc.read_text(encoding="utf-8"))
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)


def test_the_code_points_only_to_files_in_the_repository() -> None:
    missing = []
    for path in code_files():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        missing += missing_in(path, text)
        missing += [f"{rel}: {name}" for name in sorted(set(MD_NAME.findall(text)))
                    if not anywhere(name)]
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)


def test_the_patch_ids_in_use_are_the_ones_documented() -> None:
    """docs/architecture.md lists every `workflow.patched` id of workflows/, and no other."""
    constants: dict[str, str] = {}
    for path in (ROOT / "workflows").glob("*.py"):
        constants.update(re.findall(r'^([A-Z_]+) = "([a-z0-9-]+)"$', path.read_text(encoding="utf-8"), re.MULTILINE))
    used = {constants[name] for path in (ROOT / "workflows").glob("*.py")
            for name in re.findall(r"workflow\.patched\(([A-Z_]+)\)", path.read_text(encoding="utf-8"))}
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \| `workflows/", ARCHITECTURE.read_text(encoding="utf-8"),
                                re.MULTILINE))
    assert used and documented == used
