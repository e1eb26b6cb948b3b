"""The lab's HTML report: one chart per KPI (a line per arm over the simulated weeks), the last
week side by side, and the capacity advice. Self-contained (PNG charts embedded), as the run
report is. Each chart marks itself `data-rendered` in its load handler (false on a broken
image), which runs before the page's own load event, so a headless dump always sees it."""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path

import matplotlib

from simulation.kpis import KPI_DESCRIPTIONS
from simulation.results import Simulation, capacity_table, comparison_table, uplift_table

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def write_report(sim: Simulation, target: Path) -> Path:
    """Write the report for `sim` to `target` (HTML) and return it."""
    series: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for arm in sim.arms:
        for week, _, _, kpi, value in arm.rows:
            if value is not None:
                series[kpi][arm.name].append((week, value))
    charts = [_chart(kpi, lines) for kpi, lines in sorted(series.items())]
    body = "\n".join(charts) or "<p>No complete simulated week (simulate at least 7 days).</p>"
    uplift = uplift_table(sim)
    holdout = (
        "<h2>Holdout</h2><p>Treated (managed by the engine) vs held-out accounts (static rules "
        "in the same world), the uplift and its 95% bootstrap interval.</p>"
        f"<pre>{html.escape(uplift)}</pre>"
        if uplift
        else ""
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Policy lab {sim.simulation_id}</title>
<style>body{{font-family:sans-serif;margin:2em}} figure{{display:inline-block;margin:1em}}
pre{{background:#f4f4f4;padding:1em}}</style></head><body>
<h1>Policy lab: {len(sim.arms)} arms, {sim.days} days from {sim.start}</h1>
<p>Simulation {sim.simulation_id}, behaviour seed {sim.seed}. One line per arm; week 1 is the
first simulated week.</p>
<h2>Last week</h2><pre>{html.escape(comparison_table(sim))}</pre>
<h2>Capacity</h2><pre>{html.escape(capacity_table(sim))}</pre>
{holdout}
<h2>Weekly KPIs</h2>
{body}
</body></html>"""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def _chart(kpi: str, lines: dict[str, list[tuple[int, float]]]) -> str:
    fig, ax = plt.subplots(figsize=(5, 3))
    for arm, points in sorted(lines.items()):
        weeks, values = zip(*sorted(points), strict=True)
        ax.plot(weeks, values, marker="o", label=arm)
    ax.set_title(kpi)
    ax.set_xlabel("week")
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    key = kpi.split(".")[0] + (".<reason>" if kpi.startswith("returns.") else "")
    caption = html.escape(KPI_DESCRIPTIONS.get(key, kpi))
    return (
        f'<figure><img alt="{html.escape(kpi)}" src="data:image/png;base64,{data}" '
        'onload="this.dataset.rendered = this.naturalWidth > 0" '
        'onerror="this.dataset.rendered = false">'
        f"<figcaption>{caption}</figcaption></figure>"
    )
