"""The report's sections about this run: the books after it, its decisions, return reasons,
changes held or failed, pool accounts held back, the quarantine and the top hoarding flags."""

from __future__ import annotations

import duckdb
import polars as pl

from orchestration.report_render import Section, bars

TOP_FLAGS = 10


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


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {row[0] for row in con.execute(f"select * from {relation} limit 0").description}


def rep_names(con: duckdb.DuckDBPyConnection, rep_slots: str) -> str:
    """A SQL relation (rep_id, rep_name) of every book rep, to show names instead of ids."""
    return f"(select rep_id, min(rep_name) as rep_name from {rep_slots} group by rep_id)"


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
        from {rep_names(con, rep_slots)} as reps
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
    chart = bars(
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
    chart = bars(
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
        from moves inner join {rep_names(con, rep_slots)} as reps on reps.rep_id = moves.rep_id
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
    chart = bars(
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
    chart = bars(
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
