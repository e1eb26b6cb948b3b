"""The results of one benchmark run: limits beside stages, targets with PASS/MISS, markdown.

The JSON written next to the markdown is what `scaling.py` reads; the markdown is for people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

STAGES = ("extract", "contracts", "dbt build", "decisions", "write-back", "report")
DAGSTER = "books_cycle (Dagster)"
KINDS = ("initial", "full", "daily")  # each: stages run directly, then through Dagster
# The run a hot-signal sensor starts after the daily cycle: through Dagster only (its figure
# is the latency from the trigger to the CRM write, which only the whole run has).
SIGNAL = "signal"
ALL_KINDS = (*KINDS, SIGNAL)
KIND_TITLES = {
    "initial": "initial load (empty warehouse)",
    "full": "full rebuild (raw present)",
    "daily": "daily cycle (1% accounts changed, +1 day of activities)",
    SIGNAL: "signal run (50 new hot signals and 50 inbound leads after the daily cycle)",
}
SIGNAL_RUN = "signals run (Dagster)"
# Trigger to CRM write of a signals run, per scale (seconds).
SIGNAL_LATENCY_GOALS = {"S": 10.0, "L": 20.0}
GIB = 1024.0  # MiB per GiB


@dataclass(frozen=True)
class Check:
    """One performance target: the figure, the goal, and whether this scale is the one judged."""

    name: str
    figure: float | None
    goal: str
    passed: bool | None  # None: no figure (stage missing or failed)
    applies: bool  # the target is set for this scale (others are shown for information)

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "no figure"
        word = "PASS" if self.passed else "MISS"
        return word if self.applies else f"({word.lower()}; target is for another scale)"


# The API call budget is per 1,000 changes; a smaller run is held to that whole budget.
CALL_BUDGET_CHANGES = 1000


def stage(kind: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in kind.get("stages", []) if s["name"] == name), None)


def ok(s: dict[str, Any] | None) -> bool:
    return s is not None and s["status"] == "ok"


def kind_complete(kind: dict[str, Any]) -> bool:
    """Every directly-run stage succeeded: only then is the sum a figure to judge."""
    return bool(kind.get("stages")) and all(s["status"] == "ok" for s in kind["stages"])


def kind_total(kind: dict[str, Any], *, judged: bool = True) -> float | None:
    """Sum of the directly-run stages; None when judged and a stage failed or is missing."""
    if judged and not kind_complete(kind):
        return None
    times = [s["seconds"] for s in kind.get("stages", []) if s["status"] != "not available"]
    return sum(times) if times else None


def kind_peak(kind: dict[str, Any], *, judged: bool = True) -> float | None:
    if judged and not kind_complete(kind):
        return None
    peaks = [s["peak_rss_mib"] for s in kind.get("stages", []) if s["status"] != "not available"]
    return max(peaks) if peaks else None


def limit_text(kind: dict[str, Any], name: str) -> tuple[str, str]:
    """(limit measured in the same run, the stage's figure against it) for the table."""
    s = stage(kind, name)
    if not ok(s):
        return "", ""
    data = s["data"]
    if name == "extract":
        rate = data["rows"] / s["seconds"] if s["seconds"] else 0.0
        lim = kind.get("limits", {}).get("extract")
        if ok(lim) and lim["seconds"]:
            direct = lim["data"]["rows"] / lim["seconds"]
            return (
                f"SQLite direct: {lim['data']['rows']:,} rows in {lim['seconds']:.2f} s "
                f"= {direct:,.0f} rows/s",
                f"{rate:,.0f} rows/s ({data['rows']:,} rows) = {direct / rate:.1f}x slower"
                if rate
                else "0 rows/s",
            )
        why = lim["status"] if lim else "not measured (incremental run)"
        return f"SQLite direct: {why}", f"{rate:,.0f} rows/s ({data['rows']:,} rows)"
    if name in ("dbt build", "decisions"):
        lim = kind.get("limits", {}).get("dbt raw SQL")
        key = "transform_seconds" if name == "dbt build" else "decisions_seconds"
        tests = f"; incl. {data.get('tests', 0)} tests ({data.get('test_seconds', 0):.1f} s)"
        if ok(lim) and lim["data"].get(key):
            raw = lim["data"][key]
            return (
                f"compiled SQL in DuckDB: {raw:.2f} s",
                f"dbt / raw = {s['seconds'] / raw:.2f}x{tests}",
            )
        return "compiled SQL: " + (lim["status"] if lim else "not measured"), tests.lstrip("; ")
    if name == "write-back":
        changes = data["changes"]
        if data.get("plan_only"):
            return "no CRM (replica): plan only, no apply", f"{changes:,} changes planned"
        minimum = math.ceil(changes / 200)
        rate = changes / data["apply_seconds"] if data["apply_seconds"] else 0.0
        ratio = f"{data['api_calls'] / minimum:.1f}x" if minimum else "n/a (no changes)"
        return (
            f"min calls ceil({changes:,}/200) = {minimum}",
            f"{data['api_calls']} calls ({data['write_calls']} writes) = {ratio}; "
            f"{_per_thousand(data['api_calls'], changes)}; {rate:,.0f} records/s",
        )
    return "", ""


def checks(result: dict[str, Any]) -> list[Check]:
    """Every performance target that this run has a figure for."""
    scale = result["scale"]
    kinds = result.get("kinds", {})
    out: list[Check] = []

    def add(name: str, figure: float | None, goal: str, test: Any, applies: bool) -> None:
        passed = None if figure is None else bool(test(figure))
        out.append(Check(name, figure, goal, passed, applies))

    initial, full, daily = (kinds.get(k, {}) for k in KINDS)
    ext = stage(initial, "extract")
    if ext is not None:
        rate = ext["data"]["rows"] / ext["seconds"] if ok(ext) and ext["seconds"] else None
        add("initial load: rows/s extracted", rate, ">= 100,000", lambda v: v >= 100_000,
            scale == "L")  # fmt: skip
    if full:
        total = kind_total(full)
        add("full rebuild: wall s (sum of stages)", total, "<= 45 s (L)", lambda v: v <= 45,
            scale == "L")  # fmt: skip
        if scale == "XL" or scale == "L":
            add("full rebuild: wall s", total, "<= 300 s (XL)", lambda v: v <= 300, scale == "XL")
            add("full rebuild: peak RSS GiB", _gib(kind_peak(full)), "<= 16 GiB (XL)",
                lambda v: v <= 16, scale == "XL")  # fmt: skip
    if daily:
        total = kind_total(daily)
        add("daily cycle: wall s (sum of stages)", total, "<= 20 s (L)", lambda v: v <= 20,
            scale == "L")  # fmt: skip
        full_total = kind_total(full) if full else None
        ratio = total / full_total if total is not None and full_total else None
        add("daily / full rebuild", ratio, "<= 0.2 (L)", lambda v: v <= 0.2, scale == "L")
    for kind_name, kind in kinds.items():
        lim = kind.get("limits", {}).get("dbt raw SQL")
        dbt_time = sum(s["seconds"] for s in kind.get("stages", []) if
                       s["name"] in ("dbt build", "decisions") and s["status"] == "ok")  # fmt: skip
        raw = (lim or {}).get("data", {})
        raw_time = (raw.get("transform_seconds") or 0) + (raw.get("decisions_seconds") or 0)
        if ok(lim) and raw_time and dbt_time:
            add(f"{kind_name}: dbt / raw compiled SQL", dbt_time / raw_time,
                "<= 1.5x (L), <= 1.2x (XL)",
                lambda v: v <= (1.2 if scale == "XL" else 1.5), scale in ("L", "XL"))  # fmt: skip
        wb = stage(kind, "write-back")
        if ok(wb) and wb["data"]["changes"] and not wb["data"].get("plan_only"):
            d = wb["data"]
            # Below 1,000 changes a per-1,000 rate only magnifies a run's fixed calls (re-read,
            # write, read-back: 3 calls for 1 change = 3,000 per 1,000); such a run is held to
            # the budget of 1,000 changes instead.
            if d["changes"] >= CALL_BUDGET_CHANGES:
                add(f"{kind_name}: CRM API calls per 1,000 changes",
                    d["api_calls"] * 1000 / d["changes"], "<= 10", lambda v: v <= 10, True)  # fmt: skip
            else:
                add(f"{kind_name}: CRM API calls (fewer than 1,000 changes)", d["api_calls"],
                    "<= 10", lambda v: v <= 10, True)  # fmt: skip
            add(f"{kind_name}: unchanged rows sent", d["unchanged_sent"], "0", lambda v: v == 0,
                True)  # fmt: skip
        if scale == "L":
            add(f"{kind_name}: peak RSS of any stage (GiB)", _gib(kind_peak(kind)), "<= 8 GiB",
                lambda v: v <= 8, True)  # fmt: skip
    signal = kinds.get(SIGNAL, {}).get("dagster")
    if signal is not None:
        latency = signal["data"].get("trigger_latency_seconds") if ok(signal) else None
        goal = SIGNAL_LATENCY_GOALS.get(scale, SIGNAL_LATENCY_GOALS["L"])
        add("signal run: trigger to CRM write s", latency,
            "<= 10 s (S), <= 20 s (L)", lambda v: v <= goal, scale in SIGNAL_LATENCY_GOALS)  # fmt: skip
    dag = initial.get("dagster")
    if scale == "S" and dag is not None:
        add("S demo cycle (initial, through Dagster): wall s",
            dag["seconds"] if ok(dag) else None, "<= 30 s", lambda v: v <= 30, True)  # fmt: skip
    return out


def _per_thousand(calls: int, changes: int) -> str:
    if changes >= CALL_BUDGET_CHANGES:
        return f"{calls * 1000 / changes:.1f} calls/1k changes"
    return f"{calls} calls for {changes:,} changes (< 1,000)"


def _gib(mib: float | None) -> float | None:
    return None if mib is None else mib / GIB


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _signal_section(kind: dict[str, Any] | None) -> list[str]:
    """The signal run: one row, the whole run through Dagster, with what it decided."""
    if not kind:
        return []
    run = kind.get("dagster") or {}
    data = run.get("data", {}) if ok(run) else {}
    share = data.get("decided_share")
    decided = (
        f"{data['accounts_decided']:,} of {data['accounts']:,} accounts ({share:.1%}); "
        "the transform rebuilt every account"
        if share is not None
        else "-"
    )
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(data.get("decisions", {}).items()))
    return [
        "",
        f"## {KIND_TITLES[SIGNAL]}",
        "",
        *([f"Set-up: {kind['setup']}", ""] if kind.get("setup") else []),
        "| run | status | wall s | peak RSS MiB | trigger to CRM write s "
        "| accounts its decisions considered | decisions |",
        "|---|---|---:|---:|---:|---|---|",
        f"| {SIGNAL_RUN} | {run.get('status', 'not run')} | {_fmt(run.get('seconds'))} "
        f"| {_fmt(run.get('peak_rss_mib'))} | {_fmt(data.get('trigger_latency_seconds'))} "
        f"| {decided} | {decisions or '-'} |",
    ]


def render_markdown(result: dict[str, Any]) -> str:
    """The results file: set-up, one table per kind (stages + Dagster), targets, errors."""
    w = result["world"]
    lines = [
        f"# Benchmark {result['scale']} - {result['date']}",
        "",
        f"World: {result['accounts']:,} accounts, {result['reps']:,} reps, "
        f"{result['activities']:,} activities target ({w['counts']}); "
        + (
            f"built in {w['seconds']:.1f} s as {w['replica']}"
            if w.get("replica")
            else f"generated in {w['seconds']:.1f} s"
            if w["generated"]
            else "cached (not generated)"
        )
        + f". Machine: {result['machine']}. Commit {result['commit']}.",
        "",
        "Each stage runs in a fresh `spawn`ed child process: wall = time of the stage call "
        "(imports excluded), peak RSS = that process's `ru_maxrss`. Limits are measured in the "
        "same run. dbt times include dbt's tests; the raw SQL limit runs only the models.",
    ]
    for kind_name in KINDS:
        kind = result.get("kinds", {}).get(kind_name)
        if not kind:
            continue
        lines += ["", f"## {KIND_TITLES[kind_name]}", ""]
        if kind.get("setup"):
            lines += [f"Set-up: {kind['setup']}", ""]
        lines += [
            "| stage | status | wall s | peak RSS MiB | limit (same run) | figure vs limit |",
            "|---|---|---:|---:|---|---|",
        ]
        for name in STAGES:
            s = stage(kind, name)
            if s is None:
                lines.append(f"| {name} | not run | - | - | | |")
                continue
            limit, figure = limit_text(kind, name)
            lines.append(
                f"| {name} | {s['status']} | {_fmt(s['seconds'] if s['status'] != 'not available' else None)} "
                f"| {_fmt(s['peak_rss_mib'])} | {limit} | {figure} |"
            )
        total = kind_total(kind, judged=False)
        state = "" if kind_complete(kind) else "incomplete"
        lines.append(
            f"| **sum of stages** | {state} | {_fmt(total)} "
            f"| {_fmt(kind_peak(kind, judged=False))} | | |"
        )
        dag = kind.get("dagster")
        if dag is not None:
            ratio = f"Dagster / direct = {dag['seconds'] / total:.2f}x" if ok(dag) and total else ""
            lines.append(
                f"| {DAGSTER} | {dag['status']} | {_fmt(dag['seconds'])} | "
                f"{_fmt(dag['peak_rss_mib'])} | sum of stages run directly: {_fmt(total)} s "
                f"| {ratio} |"
            )
    lines += _signal_section(result.get("kinds", {}).get(SIGNAL))
    daily, full = (result.get("kinds", {}).get(k) for k in ("daily", "full"))
    if daily and full and kind_total(daily) and kind_total(full):
        lines += ["", f"daily / full rebuild = {kind_total(daily) / kind_total(full):.2f}"]
    lines += [
        "",
        "## Targets",
        "",
        "| target | figure | goal | result |",
        "|---|---:|---|---|",
    ]
    for c in checks(result):
        lines.append(f"| {c.name} | {_fmt(c.figure)} | {c.goal} | {c.verdict} |")
    errors = [
        (kind_name, s)
        for kind_name, kind in result.get("kinds", {}).items()
        for s in [*kind.get("stages", []), *kind.get("limits", {}).values(), kind.get("dagster")]
        if s is not None and s["status"] != "ok"
    ]
    if errors:
        lines += ["", "## Stages that did not run cleanly", ""]
        for kind_name, s in errors:
            first = (s["error"] or "").strip().splitlines()[:1]
            lines.append(
                f"- {kind_name} / {s['name']}: {s['status']}" + (f": {first[0]}" if first else "")
            )
    return "\n".join(lines) + "\n"
