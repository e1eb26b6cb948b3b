"""The report's sections about the warehouse as a whole: coverage by state and segment, book
balance across reps (with its Gini coefficient), supply runway and distribution cohorts."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import matplotlib
import polars as pl

from orchestration.report_render import Section, svg

matplotlib.use("Agg")  # no display: render to files only
import matplotlib.pyplot as plt  # noqa: E402

STATE_ORDER = ("ready", "resting", "review", "retired", "working", "stale", "converted", "excluded")


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
        svg(fig),
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
            svg(fig),
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
        svg(fig),
        frame,
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
    return Section("Distribution cohorts", why, svg(fig), frame)
