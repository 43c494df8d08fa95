"""Input files: regular files of at most 1 MiB, YAML loaded safely, validated by the model.

Every refusal is one line that names the file, the line and the field where it can: `scoping.yaml:7:
constraints.earliest: 2027-02-30 is not a date (day is out of range for month)`. The YAML is composed into nodes
(which know their line) and built here rather than by `yaml.safe_load`, so that a value PyYAML cannot build
(an impossible date, an integer of 5,000 digits) names its field, a key given twice is an error instead of the
last one silently winning, and the model's errors point back at the line of the field they are about.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from cli.errors import BadInput

MAX_BYTES = 1024 * 1024
# Far above any value the models accept (|v| <= 10^15); longer integers are refused before Python converts them
# (int() of 4,300+ digits raises, and base-60 `1:2:3...` integers cost quadratic time).
MAX_INT_CHARS = 100
M = TypeVar("M", bound=BaseModel)
Where = tuple[str | int, ...]  # a field's place in the document: ("constraints", "earliest"), ("actions", 0)

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_INT = "tag:yaml.org,2002:int"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# libyaml's scanner, parser and composer when PyYAML has them: about 7 times faster on a 1 MiB document, and they
# refuse nesting beyond 1,000 levels themselves (PyYAML's pure-Python composer recurses until RecursionError).
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a file")


def read_bytes(path: Path) -> bytes:
    """The file's bytes, refusing at once anything that is not a regular file: a named pipe would block the
    open and the read, a device may never end. Checked before opening, and again on the open descriptor (opened
    non-blocking) in case the path changed in between."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise BadInput(f"{path}: cannot read it: {_kind(mode)}, not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise BadInput(f"{path}: cannot read it: {_kind(info.st_mode)}, not a regular file")
            if info.st_size > MAX_BYTES:
                raise BadInput(f"{path}: the file is {info.st_size} bytes; input files are limited to 1 MiB")
            with os.fdopen(fd, "rb") as file:
                fd = -1
                raw = file.read(MAX_BYTES + 1)  # bounded even if the file grows meanwhile
        finally:
            if fd >= 0:
                os.close(fd)
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if len(raw) > MAX_BYTES:
        raise BadInput(f"{path}: more than 1 MiB; input files are limited to 1 MiB")
    return raw


def dotted(where: Where) -> str:
    """A field as the model's errors name it (schemas.common.one_line): `actions.0.due`."""
    from schemas.common import _loc_part

    return ".".join(_loc_part(part) for part in where) or "(top level)"


class _Loader(_BaseLoader):  # type: ignore[valid-type, misc]
    """SafeLoader's scanner, parser, composer and scalar constructors; mappings and sequences are built by
    `build`, which knows each value's field and line."""

    def __init__(self, text: str, source: Path) -> None:
        super().__init__(text)
        self.source = source
        self.lines: dict[Where, int] = {}

    def refuse(self, node: yaml.Node, where: Where, problem: str) -> BadInput:
        return BadInput(f"{self.source}:{node.start_mark.line + 1}: {dotted(where)}: {problem}")

    def build(self, node: yaml.Node, where: Where) -> Any:
        self.lines[where] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            self.flatten_mapping(node)  # `<<` merge keys, as safe_load does
            result: dict[Any, Any] = {}
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = self.leaf(key_node, where)
                try:
                    seen = key in first_line
                except TypeError:
                    raise self.refuse(key_node, where, "a key must be a plain value, not a list or mapping") from None
                if seen:
                    raise self.refuse(key_node, (*where, key), f"given twice (first on line {first_line[key]}); "
                                                               "each key may appear once")
                first_line[key] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*where, key))
            return result
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self.build(item, (*where, index)) for index, item in enumerate(node.value)]
        return self.leaf(node, where)

    def leaf(self, node: yaml.Node, where: Where) -> Any:
        """A scalar (or a node of another tag, which SafeLoader builds or refuses as a bad tag)."""
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT and len(node.value) > MAX_INT_CHARS:
                raise self.refuse(node, where, f"an integer of {len(node.value)} characters is out of range")
            try:
                return self.construct_object(node, deep=True)
            except (ValueError, OverflowError) as exc:
                if node.tag == _TIMESTAMP:
                    raise self.refuse(node, where, f"{node.value} is not a date ({exc})") from None
                raise self.refuse(node, where, f"cannot read {node.value[:40]!r} ({exc})") from None
        try:
            return self.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            raise self.refuse(node, where, f"cannot read the value ({exc})") from None


def load_yaml(path: Path) -> tuple[Any, dict[Where, int]]:
    """The document, and the line each field starts on."""
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        if "&" in text and "*" in text:
            # Anchors and aliases have no use in these files and are how "billion laughs" documents explode.
            for event in yaml.parse(text, Loader=_BaseLoader):
                if isinstance(event, yaml.AliasEvent):
                    raise BadInput(f"{path}: YAML aliases (*name) are not allowed")
        loader = _Loader(text, path)
        try:
            node = loader.get_single_node()
            return (loader.build(node, ()) if node is not None else None), loader.lines
        finally:
            loader.dispose()
    except RecursionError:
        # PyYAML composes nested collections recursively: `[[[[...]]]]` a few hundred deep exhausts the stack.
        raise BadInput(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if "maximum nesting depth" in str(getattr(exc, "problem", None)):  # libyaml's limit
            raise BadInput(f"{path}: YAML nested too deeply{where}") from None
        raise BadInput(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc


def load_model(path: Path, model: type[M]) -> M:
    from pydantic import ValidationError

    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a YAML mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        from schemas.common import one_line

        raise BadInput(f"{path}{_line_of(exc.errors()[0]['loc'], lines)}: {one_line(exc)}") from exc


def _line_of(loc: tuple[Any, ...], lines: dict[Where, int]) -> str:
    """`:7` for the field an error is about, or the nearest enclosing field in the file (a missing key: its
    mapping); nothing for the top level, which has no one line."""
    for end in range(len(loc), 0, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return f":{line}"
    return ""
