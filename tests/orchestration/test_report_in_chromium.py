"""The run report as a person sees it: opened in headless Chromium (Debian's `chromium`), every
chart rendered and nothing fetched from the network."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from orchestration.report_html import write_report
from tests.orchestration.test_report import _warehouse

AS_OF = date(2025, 6, 2)


class _Charts(HTMLParser):
    """Each chart container (figure.chart) of a rendered DOM: its child elements' tags, and the
    number of drawn shapes inside its svg; every URL the page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, object]] = []
        self.urls: list[str] = []
        self._depth = 0  # depth inside the current chart container (0: outside)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name) and not str(values[name]).startswith(("#", "data:")):
                self.urls.append(str(values[name]))
        if self._depth:
            self._depth += 1
            chart = self.charts[-1]
            if self._depth == 2:
                chart["children"].append(tag)  # type: ignore[union-attr]
            if tag in ("path", "rect", "polygon", "line", "circle", "canvas"):
                chart["shapes"] += 1  # type: ignore[operator]
        elif tag == "figure" and "chart" in (values.get("class") or "").split():
            self._depth = 1
            self.charts.append({"label": values.get("aria-label"), "children": [], "shapes": 0})

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if self._depth > 1:
            self._depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is needed: apt-get install chromium (Debian's package)"
    return found


def _rendered_dom(page: Path, profile: Path) -> str:
    """The DOM after the page loaded and its scripts ran (virtual time, so no real wait)."""
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_every_chart_of_the_report_renders_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    report = write_report(_warehouse(tmp_path / "w.duckdb"), page, AS_OF, "run1")
    charted = [s.title for s in report.sections if s.chart_svg]
    assert len(charted) >= 6
    dom = _Charts()
    dom.feed(_rendered_dom(page, tmp_path / "profile"))
    assert [c["label"] for c in dom.charts] == charted
    for chart in dom.charts:
        assert chart["children"] and chart["children"][0] in ("svg", "canvas"), chart  # type: ignore[index]
        assert chart["shapes"] > 0, f"chart {chart['label']} draws nothing"  # type: ignore[operator]
    assert dom.urls == []  # nothing is fetched: no CDN, no external file


def test_empty_sections_render_a_sentence_not_an_empty_chart(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    warehouse = _warehouse(tmp_path / "w.duckdb", with_decisions=False)
    report = write_report(warehouse, page, AS_OF, "run1")
    rendered = _rendered_dom(page, tmp_path / "profile")
    dom = _Charts()
    dom.feed(rendered)
    assert all(c["shapes"] for c in dom.charts)
    for section in report.sections:
        if section.empty:
            assert f'<p class="empty">{section.empty}</p>' in rendered, section.title
