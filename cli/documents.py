"""The one Jinja environment of the html documents the CLI writes: the follow-through report (cli/report/html.py)
and the agenda's run sheet (cli/agenda.py), both from `cli/templates`. The mail has its own environments
(adapters/email/render.py), the check-in page its own (adapters/web.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from cli.report.content import local_time, percent, status_label
from domain.numbers import number
from domain.schedule import local_label

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=number, status_label=status_label, percent=percent, local_time=local_time,
                       local_label=local_label)
    return env
