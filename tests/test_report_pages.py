"""Every report page as a reader sees it: each HTML report rendered by Chromium at 1280 px.

A figure must be shown at (nearly) the size it was drawn for: an image wider than the page, or
shrunk to less than :data:`MIN_SCALE` of its natural width (for a high-resolution figure, of
the width it declares), has ticks and labels too small to read. A
table cell must not end in pandas' truncation mark ("..." or "…"), nor be one (hidden rows or
columns).

The pages come from the quick reports that ``tests/test_report.py`` also checks (the session
fixture ``quick_reports`` runs them once), or from a folder of reports named by
``$MUSIC_STUDY_REPORT_PAGES`` (e.g. after ``music-study report``), which costs seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_web_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium

pytestmark = pytest.mark.slow

#: The viewport the reports are read at.
PAGE = {"width": 1280, "height": 900}
#: Smallest rendered / natural width of a figure: below it, a 10-pt tick label prints under 9 pt.
MIN_SCALE = 0.9

_MEASURE = """() => {
  const page = document.documentElement.clientWidth;
  const images = [...document.querySelectorAll('img')].map((img, i) => {
    const box = img.getBoundingClientRect();
    const cell = img.closest('.jp-Cell, .cell');
    const index = cell ? [...document.querySelectorAll('.jp-Cell, .cell')].indexOf(cell) : -1;
    // a high-resolution figure declares the size it is meant for (IPython's retina images: half)
    const w = parseFloat(img.getAttribute('width')), h = parseFloat(img.getAttribute('height'));
    const meant = w || (h && img.naturalHeight ? img.naturalWidth * h / img.naturalHeight : img.naturalWidth);
    return {i, cell: index, natural: img.naturalWidth, meant, shown: box.width, right: box.right, page};
  });
  const cells = [...document.querySelectorAll('table td, table th')].map(td => td.innerText);
  return {page, images, cells};
}"""


def figure_problems(images: list[dict], min_scale: float = MIN_SCALE) -> list[str]:
    """Which images break the rule: running past the page, or shown below *min_scale* of the
    width they are meant for (their natural width, or the width a high-resolution figure
    declares)."""
    problems = []
    for image in images:
        meant = image.get("meant") or image["natural"]
        where = f"image {image['i']} (cell {image['cell']}): {meant:.0f} px"
        if image["natural"] and image["right"] > image["page"] + 1:
            problems.append(f"{where} runs past the page's {image['page']} px")
        elif image["natural"] and image["shown"] < min_scale * meant:
            problems.append(f"{where} shown at {image['shown']:.0f} px "
                            f"({image['shown'] / meant:.0%} of its size)")
    return problems


def truncated_cells(texts) -> list[str]:
    """The table cells pandas cut: ending in its mark, or the mark alone (hidden rows/columns)."""
    return [t.strip() for t in texts if t.strip().endswith(("...", "…"))]


def test_the_cell_rule_catches_pandas_truncation_and_setup_prevents_it():
    import re

    import pandas as pd

    from helpers.reports.narrate import setup_notebook

    frame = pd.DataFrame({"reason": ["features need at least 0.5 s of audio; this file holds 0.2 s"] * 3,
                          **{f"c{i}": range(3) for i in range(30)}})

    def cells():
        return re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", frame._repr_html_(), flags=re.S)

    with pd.option_context("display.max_colwidth", 50, "display.max_columns", 20):
        assert len(truncated_cells(cells())) >= 3 + 4  # cut reasons, and the hidden-column marks
    import matplotlib as mpl

    # every option setup_notebook sets is restored on leaving
    with mpl.rc_context(), pd.option_context("display.max_colwidth", 50, "display.max_columns", 20,
                                             "display.max_rows", 60, "display.width", 80):
        setup_notebook()
        assert truncated_cells(cells()) == []


def test_the_figure_rule_catches_a_shrunk_or_overflowing_figure():
    fine = {"i": 0, "cell": 1, "natural": 1000, "shown": 1000, "right": 1100, "page": 1265}
    shrunk = {**fine, "natural": 2150, "shown": 1000}  # the six-panel figure the rule exists for
    wide = {**fine, "natural": 1400, "shown": 1400, "right": 1500}
    assert figure_problems([fine]) == []
    assert figure_problems([shrunk]) == ["image 0 (cell 1): 2150 px shown at 1000 px (47% of its size)"]
    assert "runs past" in figure_problems([wide])[0]
    retina = {**fine, "natural": 1800, "meant": 900, "shown": 900}  # twice the pixels, same size
    assert figure_problems([retina]) == []


@pytest.fixture(scope="module")
def report_pages(request) -> Path:
    """A folder of rendered reports: ``$MUSIC_STUDY_REPORT_PAGES``, else the quick reports."""
    _need_chromium()
    named = os.environ.get("MUSIC_STUDY_REPORT_PAGES")
    if named:
        return Path(named)
    return request.getfixturevalue("quick_reports")


def test_every_report_page_shows_its_figures_and_tables_whole(report_pages):
    from playwright.sync_api import sync_playwright

    pages = sorted(report_pages.glob("[0-9][0-9]_*.html"))
    assert pages, f"no report pages in {report_pages}"
    problems = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PAGE)
            for html in pages:
                page.goto(html.resolve().as_uri(), wait_until="load")
                found = page.evaluate(_MEASURE)
                assert found["page"] > 1000, f"{html.name}: page only {found['page']} px wide"
                issues = figure_problems(found["images"])
                issues += [f"truncated table cell {text[-60:]!r}" for text in truncated_cells(found["cells"])]
                if issues:
                    problems[html.name] = issues
        finally:
            browser.close()
    assert not problems, "\n".join(f"{name}: {issue}" for name, issues in problems.items()
                                   for issue in issues)
