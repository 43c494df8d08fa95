"""Input files: at most 1 MiB, YAML loaded safely (no aliases expanded into bombs), validated by the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from cli.errors import BadInput

MAX_BYTES = 1024 * 1024
M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise BadInput(f"{path}: the file is {size} bytes; input files are limited to 1 MiB")
        with path.open("rb") as file:  # a directory fails here, with the other unreadable paths
            # Bounded even where stat knows no size: a pipe, /dev/zero.
            raw = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the file ({exc.strerror})") from exc
    if len(raw) > MAX_BYTES:
        raise BadInput(f"{path}: more than 1 MiB; input files are limited to 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        if "&" in text and "*" in text:
            # Anchors and aliases have no use in these files and are how "billion laughs" documents explode.
            for event in yaml.parse(text, Loader=yaml.SafeLoader):
                if isinstance(event, yaml.AliasEvent):
                    raise BadInput(f"{path}: YAML aliases (*name) are not allowed")
        return yaml.safe_load(text)
    except RecursionError:
        # PyYAML composes nested collections recursively: `[[[[...]]]]` a few hundred deep exhausts the stack.
        raise BadInput(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BadInput(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc


def load_model(path: Path, model: type[M]) -> M:
    from pydantic import ValidationError

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a YAML mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        from schemas.common import one_line

        raise BadInput(f"{path}: {one_line(exc)}") from exc
