"""The html run sheet (`engage agenda --format html`) printed by headless Chromium: one page a day on A4 and on
Letter, nothing loaded from the network.

The picture in docs/img/agenda_run_sheet.png is made the same way:

    .venv/bin/engage agenda /work/shared/contract/scoping.example.yaml --days 3 --format html > /tmp/sheet.html
    /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars \
        --screenshot=docs/img/agenda_run_sheet.png --window-size=900,1300 file:///tmp/sheet.html
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from cli.agenda import render_html
from tests.test_domain_agenda import golden_agenda

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def _pdf_pages(html: str, tmp_path: Path, paper: str) -> int:
    page = tmp_path / f"sheet-{paper}.html"
    # The sheet leaves the paper to the printer; the test asks for each size as a print dialog would.
    page.write_text(html.replace("</style>", f"@page {{ size: {paper}; }}</style>", 1))
    pdf = tmp_path / f"sheet-{paper}.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()],
                   check=True, capture_output=True, timeout=90)
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


@pytest.mark.parametrize(("name", "paper"), [("combined_3d", "A4"), ("combined_3d", "letter"), ("group_24", "A4"),
                                           ("strategy_0.5d", "letter")])
def test_the_run_sheet_prints_one_page_a_day(name: str, paper: str, tmp_path: Path) -> None:
    agenda = golden_agenda(name)
    html = render_html(agenda, first_day=date(2027, 2, 10), title="Acme Corp")
    assert _pdf_pages(html, tmp_path, paper) == max(i.day for i in agenda.items)


def test_the_run_sheet_is_self_contained() -> None:
    html = render_html(golden_agenda("combined_3d"), title="Acme Corp")
    assert "break-after: page" in html
    assert not re.search(r"(src|href)=|@import|url\(", html), "nothing may come from the network"
    for text in ("09:00-09:30", "Dot vote: 3 dots a person", "3 dots a person (24 in all)", "sticky notes",
                 "timer", "Lunch", "Dinner together (optional)"):
        assert text in html
