"""SQL only with parameters: no query text built by string formatting, in store/ or anywhere else SQL appears.

A static check over the source with `ast`: every call of a database method (`execute`, `fetch`, `cursor`, ...)
whose query is an f-string, a `%`-formatted or `.format()`-ed string, or a `+` concatenation with anything but
literals fails the test with file:line. A query held in a variable is followed to its assignments in the same
function or module. The exceptions are table names from the constant READ_MODELS tuple (identifiers cannot be
parameters): `rebuild_projections`' TRUNCATE, and the read-model snapshot of bench/chaos.py, which loops over
it. The test checks that nothing else goes into those texts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SQL_METHODS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "cursor", "prepare", "copy_from_query",
               "_psql"}
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|TRUNCATE|CREATE TABLE|ALTER TABLE|DROP)\b")
SKIP_DIRS = {".venv", "var", "tests", ".git", "build", "node_modules", "__pycache__"}

# The known safe cases: table names from the module constant store.projections.READ_MODELS, never from input.
ALLOWED = {("store/projections.py", "rebuild_projections"), ("bench/chaos.py", "snapshot")}
CONSTANT = "READ_MODELS"


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | bytes)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_literal(node.left) and _is_literal(node.right)
    return False


def _formatting(node: ast.AST) -> str | None:
    """How `node` builds a string from non-literals, or None when it does not."""
    if isinstance(node, ast.JoinedStr):
        if any(isinstance(v, ast.FormattedValue) for v in node.values):
            return "an f-string"
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and (
            isinstance(node.left, ast.Constant | ast.JoinedStr) or _formatting(node.left)):
        return "%-formatting"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and not _is_literal(node):
        return "a + concatenation with a non-literal"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return f"str.{node.func.attr}()"
    return None


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class _Finder(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.scopes: list[ast.AST] = []
        self.functions: list[str] = []
        self.problems: list[str] = []
        self.allowed_hits: list[tuple[str, ast.AST]] = []

    def visit_Module(self, node: ast.Module) -> None:  # noqa: N802
        self.scopes.append(node)
        self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(node)
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()
        self.scopes.pop()

    visit_FunctionDef = _function  # noqa: N815
    visit_AsyncFunctionDef = _function  # noqa: N815

    def _assigned(self, name: str) -> list[ast.AST]:
        """The values assigned to `name` in the enclosing function and in the module."""
        values = []
        for scope in (self.scopes[-1], self.scopes[0]):
            for node in ast.walk(scope):
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                        for t in node.targets):
                    values.append(node.value)
                elif (isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name)
                      and node.target.id == name and node.value is not None):
                    values.append(node.value if isinstance(node, ast.AnnAssign)
                                  else ast.BinOp(ast.Name(name), ast.Add(), node.value))
        return values

    def _from_constant(self, node: ast.AST) -> bool:
        """Only READ_MODELS goes into the text: itself, or a loop variable of `for x in READ_MODELS`."""
        loops = {n.target.id for n in ast.walk(self.scopes[-1])
                 if isinstance(n, ast.For | ast.AsyncFor) and isinstance(n.target, ast.Name)
                 and isinstance(n.iter, ast.Name) and n.iter.id == CONSTANT}
        names = _names_used(node)
        return bool(names) and all(n == CONSTANT or n in loops for n in names)

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in SQL_METHODS and node.args:
            query = node.args[0]
            candidates = [query]
            if isinstance(query, ast.Name):
                candidates += self._assigned(query.id)
            candidates = list({id(c): c for c in candidates}.values())  # the module walk sees functions too
            for candidate in candidates:
                how = _formatting(candidate)
                if how is None:
                    continue
                function = self.functions[-1] if self.functions else "<module>"
                if (self.path, function) in ALLOWED and self._from_constant(candidate):
                    self.allowed_hits.append((function, candidate))
                    continue
                self.problems.append(f"{self.path}:{node.lineno}: {name}() query built with {how}: "
                                     f"{ast.unparse(candidate)[:120]}")
        self.generic_visit(node)


def check_source(source: str, path: str = "<string>") -> list[str]:
    """file:line of every database call whose query is built by string formatting."""
    finder = _Finder(path)
    finder.visit(ast.parse(source, filename=path))
    return finder.problems


def python_files_with_sql() -> list[Path]:
    """Every .py of store/, and every other project module whose text mentions SQL."""
    files = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if set(relative.parts[:-1]) & SKIP_DIRS or relative.parts[0] in SKIP_DIRS:
            continue
        if relative.parts[0] == "store" or SQL_WORDS.search(path.read_text(encoding="utf-8")):
            files.append(path)
    return files


def test_the_scan_covers_store_and_the_other_modules_with_sql() -> None:
    files = {str(p.relative_to(ROOT)) for p in python_files_with_sql()}
    for module in ("store/db.py", "store/events.py", "store/projections.py", "store/queries.py",
                   "store/migrate.py", "store/outbox.py", "store/inbound.py"):
        assert module in files, module
    assert len(files) >= 8, files  # store/ and at least one module outside it (cli/demo.py counts rows)


def test_no_sql_is_built_by_string_formatting() -> None:
    problems = []
    for path in python_files_with_sql():
        problems += check_source(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, "SQL built by string formatting (use $1, $2 parameters):\n" + "\n".join(problems)


def test_the_allowed_cases_use_only_the_constant_read_models() -> None:
    hits = []
    for path, _ in sorted(ALLOWED):
        source_path = ROOT / path
        if not source_path.exists():
            continue
        finder = _Finder(path)
        finder.visit(ast.parse(source_path.read_text(encoding="utf-8")))
        assert not finder.problems
        hits += [(path, f, q) for f, q in finder.allowed_hits]
        if path != "store/projections.py":
            # The same constant, imported: not a look-alike defined locally.
            assert f"from store.projections import {CONSTANT}" in source_path.read_text(encoding="utf-8")
    assert [(p, f) for p, f, _ in hits if p == "store/projections.py"] == [
        ("store/projections.py", "rebuild_projections")]
    for _, _, query in hits:
        assert isinstance(query, ast.JoinedStr), ast.unparse(query)
        prefix = query.values[0]
        assert isinstance(prefix, ast.Constant) and prefix.value in ("TRUNCATE ", "SELECT * FROM "), ast.unparse(query)

    # READ_MODELS is a module-level tuple of literal table names, assigned once and never rebound.
    tree = ast.parse((ROOT / "store" / "projections.py").read_text(encoding="utf-8"))
    bound = [n for n in ast.walk(tree) if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign)
             and any(isinstance(t, ast.Name) and t.id == CONSTANT
                     for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
    assert len(bound) == 1 and bound[0] in tree.body
    value = bound[0].value
    assert isinstance(value, ast.Tuple)
    assert all(isinstance(e, ast.Constant) and isinstance(e.value, str) and re.fullmatch(r"[a-z_]+", e.value)
               for e in value.elts), ast.unparse(value)


BAD = {
    "f-string": 'async def f(conn, eid):\n    await conn.execute(f"DELETE FROM events WHERE id = \'{eid}\'")\n',
    "percent": 'async def f(conn, eid):\n    await conn.fetch("SELECT * FROM events WHERE id = \'%s\'" % eid)\n',
    "format": 'async def f(pool, eid):\n    await pool.fetchrow("SELECT * FROM e WHERE id = {}".format(eid))\n',
    "plus": 'async def f(conn, table):\n    await conn.fetchval("SELECT count(*) FROM " + table)\n',
    "via a variable": 'async def f(conn, eid):\n    sql = f"SELECT * FROM e WHERE id = {eid}"\n'
                      '    await conn.execute(sql)\n',
    "cursor": 'async def f(conn, order):\n    async for r in conn.cursor("SELECT * FROM e ORDER BY " + order):\n'
              '        pass\n',
    "executemany join": 'async def f(conn, cols, rows):\n'
                        '    await conn.executemany("INSERT INTO e ({}) VALUES ($1)".format(cols), rows)\n',
}
GOOD = {
    "parameters": 'async def f(conn, eid):\n    await conn.execute("DELETE FROM events WHERE id = $1", eid)\n',
    "literal concatenation": 'async def f(conn):\n    await conn.fetch("SELECT 1" + " FROM events")\n',
    "implicit concatenation": 'async def f(conn, e):\n'
                              '    await conn.fetch("SELECT 1"\n " FROM events WHERE id = $1", e)\n',
    "constant": '_SQL = "SELECT pg_advisory_xact_lock($1)"\nasync def f(conn, e):\n    await conn.execute(_SQL, e)\n',
    "not sql": 'async def f(handle, p):\n    await handle.execute_update("choose_format", p)\n',
}


@pytest.mark.parametrize("case", list(BAD))
def test_the_check_catches_sql_built_by_formatting(case: str) -> None:
    problems = check_source(BAD[case], "bad.py")
    assert len(problems) == 1, (case, problems)
    assert problems[0].startswith("bad.py:"), problems


@pytest.mark.parametrize("case", list(GOOD))
def test_the_check_accepts_parameterised_and_literal_sql(case: str) -> None:
    assert check_source(GOOD[case], "good.py") == []


def test_the_allow_list_is_for_the_constant_only() -> None:
    """Inside the allowed function, a name that is not READ_MODELS (or a loop over it) is still caught."""
    path = "store/projections.py"
    assert check_source('async def rebuild_projections(conn):\n'
                        '    await conn.execute(f"TRUNCATE {\', \'.join(READ_MODELS)}")\n', path) == []
    assert check_source('async def rebuild_projections(conn):\n    for t in READ_MODELS:\n'
                        '        await conn.execute(f"TRUNCATE {t}")\n', path) == []
    assert len(check_source('async def rebuild_projections(conn, table):\n'
                            '    await conn.execute(f"TRUNCATE {table}")\n', path)) == 1
    assert len(check_source('async def rebuild_projections(conn, extra):\n'
                            '    await conn.execute(f"TRUNCATE {\', \'.join(READ_MODELS)} {extra}")\n', path)) == 1
    assert len(check_source('async def other(conn):\n'
                            '    await conn.execute(f"TRUNCATE {\', \'.join(READ_MODELS)}")\n', path)) == 1
