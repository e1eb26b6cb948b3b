"""The decision outcome log: what became of every recorded decision in the CRM.

`ops.decision_outcomes` is append-only: one row each time a decision's outcome changes, keyed
by (run_id, decision_id) - `decision_id` is the id `decisions.book_decisions` gives each
decision - with the ledger change that carries it. The public model
`decisions.book_decision_outcomes` joins each decision to its latest row (highest `seq`).

Outcomes: `pending` (planned, not yet confirmed), `applied` (the write-back's write is
confirmed in the CRM), `unchanged` (the CRM already held the values; nothing written),
`held` (a guard held it, or the record changed under us: CONFLICT), `failed` (the CRM refused
it, or it still failed at the end of the run; outcome_code is the CRM's code), `superseded` (a
re-run of the same date, or a later run, decided again and did not keep it), `recorded`
(nothing to write: a flag or report).

Written by the write-back only: at plan time (`link_plan`, links this attempt's decisions to
its changes and supersedes decisions a re-run dropped) and on every ledger state change
(`record_states`, in the ledger's own transaction, so the log and the ledger never disagree).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import polars as pl

PENDING, APPLIED, UNCHANGED, HELD, FAILED, SUPERSEDED, RECORDED = (
    "pending",
    "applied",
    "unchanged",
    "held",
    "failed",
    "superseded",
    "recorded",
)
OUTCOMES = (PENDING, APPLIED, UNCHANGED, HELD, FAILED, SUPERSEDED, RECORDED)

# Ledger state -> decision outcome. `retry` is failed only when logged at the end of a pass.
STATE_OUTCOME = {
    "planned": PENDING,
    "sending": PENDING,
    "acked": PENDING,
    "retry": FAILED,
    "applied": APPLIED,
    "unchanged": UNCHANGED,
    "conflict": HELD,
    "rejected": FAILED,
    "superseded": SUPERSEDED,
}

DDL = """
create schema if not exists ops;
create sequence if not exists ops.decision_outcome_seq;
create table if not exists ops.decision_outcomes (
    seq bigint not null,
    run_id varchar not null,
    decision_id varchar not null,
    account_id varchar not null,
    decision_kind varchar not null,
    lead_id varchar,
    change_key varchar,
    outcome varchar not null,
    outcome_code varchar,
    outcome_detail varchar,
    attempts integer,
    recorded_at timestamptz not null
);
"""

# The latest row of the decisions linked to the changes in `_outcome_items` (the log grows
# with every run; a ledger commit must not rank all of it).
_LATEST_OF_ITEMS = """
select outcome_log.* from ops.decision_outcomes as outcome_log
semi join (
    select run_id, decision_id from ops.decision_outcomes
    where change_key in (select change_key from _outcome_items)
) as linked using (run_id, decision_id)
qualify row_number() over (
    partition by outcome_log.run_id, outcome_log.decision_id order by outcome_log.seq desc
) = 1
"""

_INSERT = (
    "insert into ops.decision_outcomes select nextval('ops.decision_outcome_seq'), "
    "run_id, decision_id, account_id, decision_kind, lead_id, change_key, outcome, "
    "outcome_code, outcome_detail, attempts, ? from {source}"
)

_ITEM_SCHEMA = {
    "change_key": pl.Utf8,
    "state": pl.Utf8,
    "attempts": pl.Int32,
    "error_code": pl.Utf8,
    "error_message": pl.Utf8,
}


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def record_states(
    con: duckdb.DuckDBPyConnection,
    items: Iterable[tuple[str, str, int, str | None, str | None]],
    now: dt.datetime,
    states: Iterable[str],
) -> None:
    """Append the outcome of each decision whose latest row names a change that moved to one
    of `states` (change_key, state, attempts, code, message); unchanged outcomes add nothing.
    Runs inside the caller's transaction."""
    wanted = {s: STATE_OUTCOME[s] for s in states}
    frame = pl.DataFrame(
        [i for i in items if i[1] in wanted], schema=_ITEM_SCHEMA, orient="row"
    ).with_columns(pl.col("state").replace_strict(wanted, default=None).alias("outcome"))
    if frame.is_empty():
        return
    con.register("_outcome_items", frame)
    try:
        con.execute(
            _INSERT.format(
                source="(select latest.run_id, latest.decision_id, latest.account_id, "
                "latest.decision_kind, latest.lead_id, item.change_key, item.outcome, "
                "item.error_code as outcome_code, item.error_message as outcome_detail, "
                "item.attempts from (" + _LATEST_OF_ITEMS + ") as latest "
                "join _outcome_items as item on latest.change_key = item.change_key "
                "where latest.outcome not in ('applied', 'unchanged', 'superseded') "
                "and (latest.outcome, coalesce(latest.outcome_code, '')) is distinct from "
                "(item.outcome, coalesce(item.error_code, '')))"
            ),
            [now],
        )
    finally:
        con.unregister("_outcome_items")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{s}.{t}"
        for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }


def link_plan(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    held: dict[str, tuple[str, str]],
    now: dt.datetime,
) -> int:
    """Link this attempt's recorded decisions to the ledger changes that carry them; mark the
    decisions of an earlier attempt of this run that this attempt no longer makes superseded.

    `held`: change_key -> (code, reason) for changes a guard keeps back. Call after the plan is
    stored (same connection, inside its transaction). A dry run records no decisions, so it
    links nothing. Returns how many outcome rows were appended.
    """
    tables = _tables(con)
    needed = {
        "decisions.book_decisions",
        "decisions.dec_run_decisions",
        "decisions.dec_accounts_after",
        "sync.sync_salesforce__accounts",
        "ops.run_context",
    }
    if not needed <= tables:
        return 0
    for relation in ("sync.sync_salesforce__accounts", "decisions.dec_accounts_after"):
        schema, table = relation.split(".")
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchall()
        }
        missing = {"account_id", "applied_decision_kind", "request_outcome"} - columns
        if missing:
            raise ValueError(
                f"{relation} lacks {sorted(missing)}: the decision outcome log needs to know "
                "which decision each account's write carries"
            )
    dry = con.execute("select bool_or(dry_run) from ops.run_context").fetchall()[0][0]
    if dry:
        return 0
    holds = pl.DataFrame(
        [(k, code, reason) for k, (code, reason) in held.items()],
        schema={"change_key": pl.Utf8, "code": pl.Utf8, "reason": pl.Utf8},
        orient="row",
    )
    before = con.execute("select count(*) from ops.decision_outcomes").fetchall()[0][0]
    con.register("_holds", holds)
    try:
        con.execute(_LINK_SQL.format(insert=_INSERT.format(source="fresh")), [run_id, now])
    finally:
        con.unregister("_holds")
    after = con.execute("select count(*) from ops.decision_outcomes").fetchall()[0][0]
    return int(after - before)


# One statement: this attempt's decisions (book_decisions rows equal to dec_run_decisions on the
# decision's identity), the change carrying each (sync models say which decision kinds a
# record's change carries), its outcome now, and superseded rows for dropped decisions.
_LINK_SQL = """
with
run as (select ? as run_id),
recorded as (
    select book.* from decisions.book_decisions as book, run where book.run_id = run.run_id
),
current_attempt as (
    select recorded.*
    from recorded
    semi join decisions.dec_run_decisions as now_decided
        on recorded.run_id = now_decided.run_id
        and recorded.account_id = now_decided.account_id
        and recorded.decision_kind = now_decided.decision_kind
        and recorded.lead_id is not distinct from now_decided.lead_id
        and recorded.from_owner_id is not distinct from now_decided.from_owner_id
        and recorded.to_owner_id is not distinct from now_decided.to_owner_id
        and recorded.to_state is not distinct from now_decided.to_state
        and recorded.reason is not distinct from now_decided.reason
        and recorded.rest_until_date is not distinct from now_decided.rest_until_date
),
writes_crm as (
    select account_id, applied_decision_kind as decision_kind
    from decisions.dec_accounts_after where applied_decision_kind is not null
    union
    select account_id, request_outcome from decisions.dec_accounts_after
    where request_outcome is not null
),
carried as (
    select 'Account' as sobject, account_id as record_id, applied_decision_kind as decision_kind
    from sync.sync_salesforce__accounts where applied_decision_kind is not null
    union
    select 'Account', account_id, request_outcome
    from sync.sync_salesforce__accounts where request_outcome is not null
),
changes as (
    select ledger.sobject, ledger.record_id, ledger.change_key, ledger.state,
        ledger.attempts, ledger.error_code, ledger.error_message
    from ops.write_ledger as ledger, run where ledger.run_id = run.run_id
    qualify row_number() over (
        partition by ledger.sobject, ledger.record_id
        order by (ledger.state = 'superseded'), ledger.planned_at desc
    ) = 1
),
linked as (
    select
        decision.run_id, decision.decision_id, decision.account_id, decision.decision_kind,
        decision.lead_id,
        change.change_key,
        case
            when _holds.change_key is not null then 'held'
            when change.state is not null then {state_case}
            when decision.lead_id is not null then 'unchanged'
            when writes_crm.account_id is not null then 'unchanged'
            else 'recorded'
        end as outcome,
        case when _holds.change_key is not null then _holds.code else change.error_code end
            as outcome_code,
        case when _holds.change_key is not null then _holds.reason else change.error_message end
            as outcome_detail,
        change.attempts
    from current_attempt as decision
    left join carried
        on decision.lead_id is null
        and carried.record_id = decision.account_id
        and carried.decision_kind = decision.decision_kind
    left join writes_crm
        on decision.lead_id is null
        and writes_crm.account_id = decision.account_id
        and writes_crm.decision_kind = decision.decision_kind
    left join changes as change
        on (decision.lead_id is null and carried.record_id is not null
            and change.sobject = 'Account' and change.record_id = decision.account_id)
        or (decision.lead_id is not null and change.sobject = 'Lead'
            and change.record_id = decision.lead_id)
    left join _holds on _holds.change_key = change.change_key
),
dropped as (
    select
        recorded.run_id, recorded.decision_id, recorded.account_id, recorded.decision_kind,
        recorded.lead_id, cast(null as varchar) as change_key, 'superseded' as outcome,
        'DECIDED_AGAIN' as outcome_code,
        'a re-run of this run decided again and no longer made this decision' as outcome_detail,
        cast(null as integer) as attempts
    from recorded
    anti join current_attempt using (decision_id)
),
latest as (
    select outcome_log.* from ops.decision_outcomes as outcome_log, run
    where outcome_log.run_id = run.run_id
    qualify row_number() over (
        partition by outcome_log.decision_id order by outcome_log.seq desc
    ) = 1
),
fresh as (
    select candidate.*
    from (select * from linked union all select * from dropped) as candidate
    left join latest using (run_id, decision_id)
    where latest.outcome is null
        or (latest.outcome not in ('applied', 'unchanged', 'recorded')
            and (latest.outcome, coalesce(latest.outcome_code, ''),
                 coalesce(latest.change_key, ''))
            is distinct from (candidate.outcome, coalesce(candidate.outcome_code, ''),
                              coalesce(candidate.change_key, '')))
)
{insert}
"""
_LINK_SQL = _LINK_SQL.replace(
    "{state_case}",
    # At plan time an unfinished change (retry included) is pending: this apply sends it.
    "case change.state "
    + " ".join(f"when '{s}' then '{o}'" for s, o in STATE_OUTCOME.items() if s != "retry")
    + " when 'retry' then 'pending' end",
)
