"""The run report: one self-contained HTML file with charts read from the warehouse marts.

Plain Python (duckdb + polars + matplotlib, no Dagster) so it can be rebuilt from any warehouse
file: `python -m orchestration.report_html data/warehouse.duckdb out.html 2025-06-02`.
Charts are inline SVG (no script, nothing loaded from the network), so the file can be mailed
or opened offline; a chart with nothing to show is replaced by a sentence saying so.
Sections: the books after the run beside the books before (per rep, by name), this run's
decisions by kind and by rep, return reasons, changes held or failed and why, the pool accounts
held back and why, the quarantine, the top hoarding flags, coverage, book balance, supply
runway and distribution cohorts. A dry run is labelled as such at the top.
"""

from __future__ import annotations

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
import matplotlib.ticker
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
# Tables a section reads when the warehouse has them (a sentence says so otherwise).
OPTIONAL_TABLES: dict[str, tuple[str, ...]] = {
    "run_decisions": ("decisions.dec_run_decisions",),
    "outcomes": ("decisions.book_decision_outcomes",),
    "quarantine": ("ops.quarantine",),
    "hoarding": ("marts.hoarding_flags",),
    "users": ("intermediate.int_users_classified",),
}
TOP_FLAGS = 10
STATE_ORDER = ("ready", "resting", "review", "retired", "working", "stale", "converted", "excluded")
BOOK_STATES = ("working", "stale")


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
                f"<tr><th>{html.escape(k)}</th><td class='n'>{_fmt(v)}</td></tr>"
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
                parts.append(_html_table(section.table))
        parts.append("</body></html>")
        return "\n".join(parts)


def _html_table(frame: pl.DataFrame, limit: int = 50) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td{_cell_class(v)}>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.head(limit).iter_rows()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell_class(value: object) -> str:
    return " class='n'" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def _fmt(value: object) -> str:
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


def _svg(fig: plt.Figure) -> str:
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
    for logical, candidates in OPTIONAL_TABLES.items():
        found = next((c for c in candidates if c in existing), None)
        if found is not None:
            resolved[logical] = found
    return resolved


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> pl.DataFrame:
    """A query's result as a polars frame (with bound parameters)."""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=names, orient="row")


def _run_frame(
    con: duckdb.DuckDBPyConnection, table: str | None, run_id: str | None, sql: str
) -> pl.DataFrame:
    """This run's rows by `sql` (`{table}` and a `run_id = ?` parameter in it); empty when the
    table or the run is unknown (a warehouse built before that table existed)."""
    if not (table and run_id):
        return pl.DataFrame()
    return _frame(con, sql.format(table=table), [run_id])


def _last_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run the warehouse was last built for (ops.run_context), when none is given."""
    try:
        row = con.execute("select run_id from ops.run_context").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {row[0] for row in con.execute(f"select * from {relation} limit 0").description}


def _rep_names(con: duckdb.DuckDBPyConnection, rep_slots: str) -> str:
    """A SQL relation (rep_id, rep_name) of every book rep, to show names instead of ids."""
    return f"(select rep_id, min(rep_name) as rep_name from {rep_slots} group by rep_id)"


def _bars(labels: list[str], series: dict[str, list[float]], title: str, ylabel: str) -> str:
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
    return _svg(fig)


def books_after_section(
    con: duckdb.DuckDBPyConnection, accounts: str, rep_slots: str, dry_run: bool
) -> Section:
    """Each rep's book after the run beside the book the run started from, by name."""
    columns = _columns(con, accounts)
    owner_before = "owner_id_before" if "owner_id_before" in columns else "owner_id"
    state_before = "state_before" if "state_before" in columns else "state"
    frame = con.sql(
        f"""
        with after as (
            select owner_id as rep_id, count(*) as book_after from {accounts}
            where state in ('working', 'stale') group by 1
        ),
        before as (
            select {owner_before} as rep_id, count(*) as book_before from {accounts}
            where {state_before} in ('working', 'stale') group by 1
        )
        select reps.rep_name as rep, coalesce(before.book_before, 0) as book_before,
               coalesce(after.book_after, 0) as book_after,
               coalesce(after.book_after, 0) - coalesce(before.book_before, 0) as change
        from {_rep_names(con, rep_slots)} as reps
        left join after on after.rep_id = reps.rep_id
        left join before on before.rep_id = reps.rep_id
        order by book_after desc, rep
        """
    ).pl()
    why = (
        "Working + stale accounts each rep owns after this run's changes the CRM confirmed, "
        "beside the book the run started from; a rep whose book the run emptied shows here."
    )
    if not frame.height:
        return Section("Books after the run", why, empty="No book reps in this warehouse.")
    chart = _bars(
        frame["rep"].to_list(),
        {
            "before the run": frame["book_before"].to_list(),
            "after the run": frame["book_after"].to_list(),
        },
        "Book size per rep, before and after the run",
        "accounts in the book",
    )
    note = "Dry run: nothing was written, so after equals before." if dry_run else ""
    return Section("Books after the run", why, chart, frame, note)


def decisions_section(
    con: duckdb.DuckDBPyConnection, run_decisions: str | None, rep_slots: str, run_id: str | None
) -> list[Section]:
    """This run's decisions by kind (chart) and by receiving or giving rep (table)."""
    why_kind = "What this run decided, by kind (a dry run's decisions too: what it would do)."
    why_rep = "Accounts each rep receives and gives up in this run, by name."
    if run_decisions is None or run_id is None:
        sentence = "This warehouse holds no decisions of this run."
        return [
            Section("Decisions by kind", why_kind, empty=sentence),
            Section("Decisions by rep", why_rep, empty=sentence),
        ]
    kinds = _frame(
        con,
        f"select decision_kind, count(*) as decisions from {run_decisions} where run_id = ? "
        "group by 1 order by 2 desc, 1",
        [run_id],
    )
    if not kinds.height:
        sentence = "This run decided nothing: no account changes owner or state."
        return [
            Section("Decisions by kind", why_kind, empty=sentence),
            Section("Decisions by rep", why_rep, empty=sentence),
        ]
    chart = _bars(
        kinds["decision_kind"].to_list(),
        {"decisions": kinds["decisions"].to_list()},
        "Decisions of this run by kind",
        "decisions",
    )
    by_rep = _frame(
        con,
        f"""
        with moves as (
            select to_owner_id as rep_id, 1 as received, 0 as given_up
            from {run_decisions} where run_id = $run and to_owner_id is not null
            union all
            select from_owner_id, 0, 1
            from {run_decisions} where run_id = $run and from_owner_id is not null
        )
        select reps.rep_name as rep, sum(received) as received, sum(given_up) as given_up
        from moves inner join {_rep_names(con, rep_slots)} as reps on reps.rep_id = moves.rep_id
        group by 1 order by received desc, given_up desc, rep
        """,
        {"run": run_id},
    )
    return [
        Section("Decisions by kind", why_kind, chart, kinds),
        Section(
            "Decisions by rep",
            why_rep,
            table=by_rep,
            empty="" if by_rep.height else "No book rep receives or gives up an account.",
        ),
    ]


def return_reasons_section(
    con: duckdb.DuckDBPyConnection, run_decisions: str | None, run_id: str | None
) -> Section:
    why = "Why reps handed accounts back to the pool in this run (their return requests)."
    frame = _run_frame(
        con,
        run_decisions,
        run_id,
        "select coalesce(reason, '(none given)') as reason, count(*) as returns "
        "from {table} where run_id = ? and decision_kind = 'return' "
        "group by 1 order by 2 desc, 1",
    )
    if not frame.height:
        return Section("Return reasons", why, empty="No rep returned an account in this run.")
    chart = _bars(
        frame["reason"].to_list(), {"returns": frame["returns"].to_list()}, "Returns", "accounts"
    )
    return Section("Return reasons", why, chart, frame)


def held_changes_section(
    con: duckdb.DuckDBPyConnection, outcomes: str | None, run_id: str | None
) -> Section:
    why = (
        "Decisions of this run the write-back did not carry out, and why: held (a guard, or "
        "the record changed in the CRM meanwhile) or failed (the CRM refused; the code says "
        "why). A re-run of the same date sends the failed ones again."
    )
    frame = _run_frame(
        con,
        outcomes,
        run_id,
        "select decision_kind, outcome, coalesce(outcome_code, '') as code, "
        "count(*) as decisions, min(outcome_detail) as example "
        "from {table} where run_id = ? and outcome in ('held', 'failed') "
        "group by 1, 2, 3 order by decisions desc, 1, 2, 3",
    )
    if not frame.height:
        return Section("Held changes", why, empty="No change of this run was held or failed.")
    return Section("Held changes", why, table=frame)


def quarantine_section(
    con: duckdb.DuckDBPyConnection, quarantine: str | None, run_id: str | None
) -> Section:
    why = (
        "CRM records and landing-file rows this run kept out of the decisions because they "
        "broke a data contract, by object and rule; the rest of the data went on."
    )
    frame = _run_frame(
        con,
        quarantine,
        run_id,
        "select stage, object, rule, count(*) as records, min(reason) as requirement "
        "from {table} where run_id = ? group by 1, 2, 3 order by records desc, 1, 2, 3",
    )
    if not frame.height:
        return Section("Quarantine", why, empty="Nothing was quarantined in this run.")
    chart = _bars(
        [f"{o} {r}" for o, r in zip(frame["object"], frame["rule"], strict=True)],
        {"records": frame["records"].to_list()},
        "Quarantined records by object and rule",
        "records",
    )
    return Section("Quarantine", why, chart, frame)


def hoarding_section(con: duckdb.DuckDBPyConnection, hoarding: str | None, names: str) -> Section:
    why = f"The {TOP_FLAGS} strongest hoarding flags: books or accounts held without being worked."
    frame = (
        con.sql(
            f"select coalesce(reps.rep_name, flags.rep_id) as rep, flags.flag_kind, "
            f"flags.account_id, flags.flag_count, flags.detail "
            f"from {hoarding} as flags "
            f"left join {names} as reps on reps.rep_id = flags.rep_id "
            f"order by flags.flag_count desc nulls last, rep, flags.account_id "
            f"limit {TOP_FLAGS}"
        ).pl()
        if hoarding
        else pl.DataFrame()
    )
    if not frame.height:
        return Section("Top hoarding flags", why, empty="No hoarding flag was raised.")
    return Section("Top hoarding flags", why, table=frame)


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
        _svg(fig),
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
            _svg(fig),
            frame.select("rep_name", "segment_key", "capacity", "book_size").head(15),
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
        _svg(fig),
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
    why = (
        "What share of each distribution batch reps have touched (and converted) since: the "
        "proof that distributed accounts get worked (R14)."
    )
    if not frame.height:
        return Section("Distribution cohorts", why, empty="No distributions recorded yet.")
    fig, ax = plt.subplots(figsize=(9, 3.2))
    labels = [str(d) for d in frame["cohort_date"].to_list()]
    ax.bar(labels, frame["share_touched"].to_list())
    ax.set_ylim(0, 1)
    ax.set_ylabel("share touched since")
    ax.set_title("Distribution cohorts")
    return Section("Distribution cohorts", why, _svg(fig), frame)


def build_report(
    warehouse: str | Path,
    as_of_date: date,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
) -> Report:
    """Read the marts (read-only) and assemble the report's sections and headline figures."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = resolve_tables(con)
        log.info("report tables: %s", tables)
        run_id = run_id or _last_run_id(con)
        accounts, rep_slots = tables["accounts"], tables["rep_slots"]
        report = Report(as_of_date=as_of_date, run_id=run_id, dry_run=dry_run)
        report.sections.append(books_after_section(con, accounts, rep_slots, dry_run))
        run_decisions = tables.get("run_decisions")
        report.sections += decisions_section(con, run_decisions, rep_slots, run_id)
        report.sections.append(return_reasons_section(con, run_decisions, run_id))
        report.sections.append(held_changes_section(con, tables.get("outcomes"), run_id))
        report.sections.append(held_section(con, tables["candidates"]))
        report.sections.append(quarantine_section(con, tables.get("quarantine"), run_id))
        users = tables.get("users")
        names = (
            f"(select user_id as rep_id, user_name as rep_name from {users})"
            if users
            else _rep_names(con, rep_slots)
        )
        report.sections.append(hoarding_section(con, tables.get("hoarding"), names))
        report.sections.append(coverage_section(con, accounts))
        balance, coefficient = balance_section(con, accounts, rep_slots)
        report.sections.append(balance)
        report.sections.append(runway_section(con, accounts, rep_slots))
        report.sections.append(cohorts_section(con, accounts, tables["decisions"]))
        totals = con.execute(
            f"select count(*), count(*) filter (where state = 'ready'), "
            f"count(*) filter (where state in ('working', 'stale')) from {accounts}"
        ).fetchone()
    report.figures = {
        "accounts": float(totals[0]),
        "ready in pool": float(totals[1]),
        "in books (working + stale)": float(totals[2]),
        "book size Gini": coefficient,
    }
    return report


def write_report(
    warehouse: str | Path,
    out_path: str | Path,
    as_of_date: date,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
) -> Report:
    """Build the report and write it as one HTML file (parent folders created)."""
    report = build_report(warehouse, as_of_date, run_id, dry_run=dry_run)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_html(), encoding="utf-8")
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) != 4:
        sys.exit("usage: python -m orchestration.report_html WAREHOUSE OUT.html YYYY-MM-DD")
    write_report(sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3]))
