"""How the run report looks: the HTML page around its sections and the inline SVG charts.

Charts are inline SVG (no script, nothing loaded from the network), so the file can be mailed
or opened offline; a section with nothing to show carries a sentence instead of a chart.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from datetime import date

import matplotlib
import matplotlib.ticker
import polars as pl

matplotlib.use("Agg")  # no display: render to files only
import matplotlib.pyplot as plt  # noqa: E402


@dataclass
class Section:
    title: str
    why: str
    chart_svg: str | None = None
    table: pl.DataFrame | None = None
    note: str = ""
    empty: str = ""  # the sentence shown instead of a chart and table with nothing to show


@dataclass
class Report:
    as_of_date: date
    run_id: str | None
    sections: list[Section] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    dry_run: bool = False

    def to_html(self) -> str:
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>dynamic-books report {self.as_of_date}</title>",
            "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
            "padding:2px 8px}td.n{text-align:right}th{background:#f3f3f3}.why{color:#555}"
            "figure.chart svg{max-width:100%;height:auto}.empty{color:#555;font-style:italic}"
            ".dry{background:#fff3cd;border:2px solid #d39e00;padding:.6em 1em;font-size:1.2em}"
            "</style></head><body>",
            f"<h1>dynamic-books report, as of {self.as_of_date}</h1>",
        ]
        if self.dry_run:
            parts.append(
                "<p class='dry' id='dry-run'><strong>DRY RUN</strong>: nothing was written to "
                "the CRM. The decisions below are what a real run would do; the books after "
                "the run are the books before it.</p>"
            )
        if self.run_id:
            parts.append(f"<p>run <code>{html.escape(self.run_id)}</code></p>")
        if self.figures:
            rows = "".join(
                f"<tr><th>{html.escape(k)}</th><td class='n'>{fmt(v)}</td></tr>"
                for k, v in self.figures.items()
            )
            parts.append(f"<table>{rows}</table>")
        for section in self.sections:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            parts.append(f"<p class='why'>{html.escape(section.why)}</p>")
            if section.empty:
                parts.append(f"<p class='empty'>{html.escape(section.empty)}</p>")
                continue
            if section.note:
                parts.append(f"<p><em>{html.escape(section.note)}</em></p>")
            if section.chart_svg:
                label = html.escape(section.title)
                parts.append(
                    f"<figure class='chart' aria-label='{label}'>{section.chart_svg}</figure>"
                )
            if section.table is not None and section.table.height:
                parts.append(html_table(section.table))
        parts.append("</body></html>")
        return "\n".join(parts)


def html_table(frame: pl.DataFrame, limit: int = 50) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td{_cell_class(v)}>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.head(limit).iter_rows()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell_class(value: object) -> str:
    return " class='n'" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def fmt(value: object) -> str:
    """Numbers with thousands separators (whole floats without decimals), the rest as text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _tick(value: float, _position: object = None) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def svg(fig: plt.Figure) -> str:
    """The figure as inline SVG (text kept as text, no XML prologue), thousands separators on
    the value axis."""
    for ax in fig.axes:
        for axis in (ax.yaxis, ax.xaxis):
            if isinstance(axis.get_major_formatter(), matplotlib.ticker.ScalarFormatter):
                axis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def bars(labels: list[str], series: dict[str, list[float]], title: str, ylabel: str) -> str:
    """Vertical (grouped) bars, one group per label, as inline SVG."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / max(len(series), 1)
    positions = list(range(len(labels)))
    for i, (name, values) in enumerate(series.items()):
        ax.bar([p + i * width for p in positions], values, width=width, label=name)
    ax.set_xticks([p + width * (len(series) - 1) / 2 for p in positions])
    ax.set_xticklabels(labels, rotation=30 if len(labels) > 6 else 0, ha="right", fontsize=8)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return svg(fig)
