"""The run report: one self-contained HTML file with charts read from the warehouse marts.

Plain Python (duckdb + polars + matplotlib, no Dagster) so it can be rebuilt from any warehouse
file: `python -m orchestration.report_html data/warehouse.duckdb out.html 2025-06-02`.
Charts are PNGs embedded as base64, so the file can be mailed or opened offline.
Sections: coverage (accounts by state per segment), book balance across reps, supply runway
(ready accounts vs open slots per segment), the pool accounts this run held back and why, and
distribution cohorts (share touched since).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import matplotlib
import polars as pl

matplotlib.use("Agg")  # no display: render to PNG only
import matplotlib.pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)

# Logical tables and where to find them, best first (public marts, then the contract models).
TABLES: dict[str, tuple[str, ...]] = {
    "accounts": ("marts.accounts", "intermediate.int_accounts_classified"),
    "rep_slots": ("intermediate.int_reps_capacity",),
    "decisions": ("decisions.book_decisions",),
    "candidates": ("decisions.dec_run_candidates",),
}
STATE_ORDER = ("ready", "resting", "review", "retired", "working", "stale", "converted", "excluded")
BOOK_STATES = ("working", "stale")


@dataclass
class Section:
    title: str
    why: str
    image_png: bytes | None = None
    table: pl.DataFrame | None = None
    note: str = ""


@dataclass
class Report:
    as_of_date: date
    run_id: str | None
    sections: list[Section] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def to_html(self) -> str:
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>dynamic-books report {self.as_of_date}</title>",
            "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
            "padding:2px 8px;text-align:right}th{background:#f3f3f3}.why{color:#555}"
            "img{max-width:100%}</style></head><body>",
            f"<h1>dynamic-books report, as of {self.as_of_date}</h1>",
        ]
        if self.run_id:
            parts.append(f"<p>run <code>{html.escape(self.run_id)}</code></p>")
        if self.figures:
            rows = "".join(
                f"<tr><th>{html.escape(k)}</th><td>{v:,.2f}</td></tr>"
                for k, v in self.figures.items()
            )
            parts.append(f"<table>{rows}</table>")
        for section in self.sections:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            parts.append(f"<p class='why'>{html.escape(section.why)}</p>")
            if section.note:
                parts.append(f"<p><em>{html.escape(section.note)}</em></p>")
            if section.image_png:
                encoded = base64.b64encode(section.image_png).decode("ascii")
                parts.append(
                    f"<img alt='{html.escape(section.title)}' "
                    f"src='data:image/png;base64,{encoded}'>"
                )
            if section.table is not None and section.table.height:
                parts.append(_html_table(section.table))
        parts.append("</body></html>")
        return "\n".join(parts)


def _html_table(frame: pl.DataFrame, limit: int = 50) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.head(limit).iter_rows()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def resolve_tables(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The first existing relation for each logical table; a missing one is a clear error."""
    existing = {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    resolved = {}
    for logical, candidates in TABLES.items():
        found = next((c for c in candidates if c in existing), None)
        if found is None:
            raise LookupError(
                f"report needs table {logical!r}: none of {', '.join(candidates)} exists in the "
                "warehouse (run the dbt models first)"
            )
        resolved[logical] = found
    return resolved


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values: 0 = perfectly even, towards 1 = concentrated."""
    xs = sorted(float(v) for v in values)
    n = len(xs)
    total = sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return (2 * weighted) / (n * total) - (n + 1) / n


def coverage_section(con: duckdb.DuckDBPyConnection, accounts: str) -> Section:
    frame = con.sql(
        f"select coalesce(segment_key, '(none)') as segment_key, state, count(*) as accounts "
        f"from {accounts} group by all order by 1, 2"
    ).pl()
    pivot = frame.pivot(on="state", index="segment_key", values="accounts").fill_null(0)
    states = [s for s in STATE_ORDER if s in pivot.columns]
    pivot = pivot.select(["segment_key", *states])
    fig, ax = plt.subplots(figsize=(9, 3.8))
    bottom = [0] * pivot.height
    for state in states:
        values = pivot[state].to_list()
        ax.bar(pivot["segment_key"].to_list(), values, bottom=bottom, label=state)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("accounts")
    ax.set_title("Accounts by state and segment")
    ax.legend(ncols=4, fontsize=8)
    return Section(
        "Coverage",
        "Where every account is in its lifecycle; a big ready pool with idle reps, or many "
        "stale accounts, means coverage is being left on the table (R12).",
        _png(fig),
        pivot,
    )


def balance_section(
    con: duckdb.DuckDBPyConnection, accounts: str, rep_slots: str
) -> tuple[Section, float]:
    frame = con.sql(
        f"""
        with reps as (
            select rep_id, min(rep_name) as rep_name, min(segment_key) as segment_key,
                   sum(capacity) as capacity
            from {rep_slots} group by rep_id
        ),
        books as (
            select owner_id, count(*) as book_size
            from {accounts}
            where state in ('working', 'stale')
            group by owner_id
        )
        select reps.rep_id, reps.rep_name, reps.segment_key, reps.capacity,
               coalesce(books.book_size, 0) as book_size
        from reps left join books on books.owner_id = reps.rep_id
        order by book_size desc, reps.rep_id
        """
    ).pl()
    coefficient = gini(frame["book_size"].to_list())
    fig, ax = plt.subplots(figsize=(9, 3.8))
    ax.bar(range(frame.height), frame["book_size"].to_list(), label="book size")
    ax.plot(range(frame.height), frame["capacity"].to_list(), "k_", markersize=9, label="capacity")
    ax.set_xlabel("reps (largest book first)")
    ax.set_ylabel("owned accounts in the book")
    ax.set_title(f"Book balance across reps (Gini {coefficient:.2f})")
    ax.legend(fontsize=8)
    return (
        Section(
            "Book balance",
            "Books sized to what a rep can work and even across reps; a high Gini or books far "
            "above capacity point to hoarding (R13).",
            _png(fig),
            frame.head(15),
        ),
        coefficient,
    )


def runway_section(con: duckdb.DuckDBPyConnection, accounts: str, rep_slots: str) -> Section:
    frame = con.sql(
        f"""
        with supply as (
            select segment_key, count(*) as ready_accounts
            from {accounts} where state = 'ready' group by segment_key
        ),
        demand as (
            select segment_key,
                   sum(case when is_eligible then least(open_slots, max_new_per_run) else 0 end)
                       as slots_per_run
            from {rep_slots} group by segment_key
        )
        select coalesce(supply.segment_key, demand.segment_key) as segment_key,
               coalesce(ready_accounts, 0) as ready_accounts,
               coalesce(slots_per_run, 0) as slots_per_run,
               case when coalesce(slots_per_run, 0) > 0
                    then coalesce(ready_accounts, 0) * 1.0 / slots_per_run end as runs_of_supply
        from supply full outer join demand on supply.segment_key = demand.segment_key
        order by segment_key
        """
    ).pl()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    segments = frame["segment_key"].cast(pl.Utf8).fill_null("(none)").to_list()
    runs = [0.0 if v is None else float(v) for v in frame["runs_of_supply"].to_list()]
    ax.barh(segments, runs)
    ax.set_xlabel("distribution runs the ready pool can fill at today's demand")
    ax.set_title("Supply runway per segment")
    return Section(
        "Supply runway",
        "Ready accounts against the slots reps can take per run: a short runway means the pool "
        "will run dry and rules (fit tiers, rest periods) need loosening (R16).",
        _png(fig),
        frame,
    )


def held_section(con: duckdb.DuckDBPyConnection, candidates: str) -> Section:
    frame = con.sql(
        f"""
        select coalesce(segment_key, '(none)') as segment_key, exclusion_reason,
               count(*) as accounts,
               count(*) filter (where is_hot) as hot_accounts
        from {candidates}
        where not is_chosen
        group by all
        order by segment_key, accounts desc, exclusion_reason
        """
    ).pl()
    held_hot = frame.filter(pl.col("exclusion_reason") == "no_capacity")["hot_accounts"].sum()
    note = (
        f"{held_hot:,} hot accounts wait in the pool because no rep of their segment has room."
        if held_hot
        else ""
    )
    return Section(
        "Held in the pool",
        "The pool accounts this run considered but gave to nobody, by the one reason each was "
        "held (no_capacity: every eligible rep of the segment is at target or at its "
        "new-account budget). `books explain ACCOUNT_ID` tells one account's story.",
        None,
        frame,
        note,
    )


def cohorts_section(con: duckdb.DuckDBPyConnection, accounts: str, decisions: str) -> Section:
    frame = con.sql(
        f"""
        select decisions.as_of_date as cohort_date,
               count(*) as distributed,
               count(accounts.last_meaningful_touch_date) filter (
                   where accounts.last_meaningful_touch_date >= decisions.as_of_date
               ) as touched_since,
               count(*) filter (where accounts.state = 'converted') as converted
        from {decisions} as decisions
        left join {accounts} as accounts on accounts.account_id = decisions.account_id
        where decisions.decision_kind in ('distribute', 'signal_route', 'swap')
        group by decisions.as_of_date
        order by cohort_date
        """
    ).pl()
    frame = frame.with_columns(
        (pl.col("touched_since") / pl.col("distributed")).alias("share_touched")
    )
    fig, ax = plt.subplots(figsize=(9, 3.2))
    labels = [str(d) for d in frame["cohort_date"].to_list()]
    ax.bar(labels, frame["share_touched"].to_list())
    ax.set_ylim(0, 1)
    ax.set_ylabel("share touched since")
    ax.set_title("Distribution cohorts")
    note = "" if frame.height else "No distributions recorded yet."
    return Section(
        "Distribution cohorts",
        "What share of each distribution batch reps have touched (and converted) since: the "
        "proof that distributed accounts get worked (R14).",
        _png(fig),
        frame,
        note,
    )


def build_report(warehouse: str | Path, as_of_date: date, run_id: str | None = None) -> Report:
    """Read the marts (read-only) and assemble the report's sections and headline figures."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = resolve_tables(con)
        log.info("report tables: %s", tables)
        report = Report(as_of_date=as_of_date, run_id=run_id)
        report.sections.append(coverage_section(con, tables["accounts"]))
        balance, coefficient = balance_section(con, tables["accounts"], tables["rep_slots"])
        report.sections.append(balance)
        report.sections.append(runway_section(con, tables["accounts"], tables["rep_slots"]))
        report.sections.append(held_section(con, tables["candidates"]))
        report.sections.append(cohorts_section(con, tables["accounts"], tables["decisions"]))
        totals = con.execute(
            f"select count(*), count(*) filter (where state = 'ready'), "
            f"count(*) filter (where state in ('working', 'stale')) from {tables['accounts']}"
        ).fetchone()
    report.figures = {
        "accounts": float(totals[0]),
        "ready in pool": float(totals[1]),
        "in books (working + stale)": float(totals[2]),
        "book size Gini": coefficient,
    }
    return report


def write_report(
    warehouse: str | Path, out_path: str | Path, as_of_date: date, run_id: str | None = None
) -> Report:
    """Build the report and write it as one HTML file (parent folders created)."""
    report = build_report(warehouse, as_of_date, run_id)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_html(), encoding="utf-8")
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) != 4:
        sys.exit("usage: python -m orchestration.report_html WAREHOUSE OUT.html YYYY-MM-DD")
    write_report(sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3]))
