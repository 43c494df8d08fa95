"""The layers of docs/architecture.md ("Layers"), checked on every import of the code, local imports included:
a module imports only from the layers below it, and workflow modules import the rest of the code inside
`workflow.unsafe.imports_passed_through()`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What each part of the code may import of ours (a package, or one module of it), besides itself.
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "domain": {"schemas"},
    "store": {"schemas", "domain"},
    # The workflow classes are imported for typed references (EngagementWorkflow.choose_format), never run here;
    # devstack.process for the one error a taken port raises and the check for a free one.
    "adapters": {"schemas", "domain", "store", "workflows", "devstack.process"},
    "activities": {"schemas", "domain", "store", "adapters"},
    "workflows": {"schemas", "domain", "activities"},
    # The search attributes it registers on the dev server.
    "devstack": {"schemas", "workflows.search_attributes"},
    "worker": {"schemas", "store", "adapters", "activities", "workflows"},
    "cli": {"schemas", "domain", "store", "adapters", "activities", "workflows", "devstack", "worker"},
}
OURS = {*ALLOWED, "bench", "tests"}

# Imports that break the rule today, each with the reason it is still there. Shrink this; never grow it.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("adapters/web.py", "cli.report.chart"): "the check-in page draws the report's metric chart",
    ("adapters/web.py", "cli.report.content"): "the check-in page shows the report's status words and colours",
}


def code_files() -> list[Path]:
    return sorted(p for part in ALLOWED for p in ([ROOT / f"{part}.py"] if part == "worker" else
                                                   (ROOT / part).rglob("*.py")))


def imports_of(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] in OURS]


def allowed(part: str, module: str) -> bool:
    top = module.split(".")[0]
    return top == part or any(module == a or module.startswith(a + ".") for a in ALLOWED[part])


def test_every_import_follows_the_layers() -> None:
    broken = []
    for path in code_files():
        rel = path.relative_to(ROOT).as_posix()
        part = rel.split("/")[0].removesuffix(".py")
        for module, line in imports_of(ast.parse(path.read_text(encoding="utf-8"))):
            if not allowed(part, module) and (rel, module) not in KNOWN_EXCEPTIONS:
                broken.append(f"{rel}:{line} imports {module}")
    assert not broken, "imports against docs/architecture.md (Layers):\n" + "\n".join(broken)


def test_the_known_exceptions_are_still_there() -> None:
    """An exception that is gone comes off the list (and off docs/architecture.md)."""
    for rel, module in KNOWN_EXCEPTIONS:
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        assert module in {m for m, _ in imports_of(tree)}, f"{rel} no longer imports {module}: drop it from the list"


def _passed_through(node: ast.With) -> bool:
    return any(isinstance(item.context_expr, ast.Call) and ast.unparse(item.context_expr.func).endswith(
        "imports_passed_through") for item in node.items)


def test_workflow_modules_import_our_code_passed_through_the_sandbox() -> None:
    broken = []
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = {id(n) for w in ast.walk(tree) if isinstance(w, ast.With) and _passed_through(w)
                  for n in ast.walk(w)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import) and id(node) not in inside:
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                for name in names:
                    if name.split(".")[0] in {"schemas", "domain", "activities"}:
                        broken.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not broken, "outside workflow.unsafe.imports_passed_through():\n" + "\n".join(broken)
