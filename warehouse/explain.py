"""One account's story, for `books explain`: where it stands, why it scores what it scores,
every decision about it, and what the last run that considered it decided.

Read from the analytics file (opened read-only), so it works while a cycle holds the
warehouse. Returns lines of text; the CLI prints them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

# What each exclusion reason of decisions.run_candidates means, in a RevOps lead's words.
EXCLUSION_TEXT = {
    "resting": "it was resting (until {rest_until_date})",
    "outside_segment": "no eligible rep works its segment ({segment_key})",
    "family_held": "its family could not move (a member is in a rep's book, or a customer)",
    "not_hot": "a signals run routes hot accounts only",
    "no_capacity": "no eligible rep of segment {segment_key} had an open slot and budget left",
    "returned_by_rep": "the only reps with room were the rep who returned it ({blocked_rep_id})",
    "family_too_large": "its family needed more slots than any rep of {segment_key} had left",
    "lower_rank": (
        "it ranked #{segment_rank} in {segment_key}; the picks of this run ended at #{last_rank}"
    ),
}


class ExplainError(Exception):
    """The account or the analytics file cannot be found; the message says what to do."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


def explain_account(analytics: Path, account_id: str) -> list[str]:
    """The story of `account_id` as the last published run left it."""
    if not analytics.exists():
        raise ExplainError(
            f"no analytics file at {analytics}: run `books run` (or `books demo`) first"
        )
    con = duckdb.connect(str(analytics), read_only=True)
    try:
        return _story(con, account_id)
    finally:
        con.close()


def _story(con: duckdb.DuckDBPyConnection, account_id: str) -> list[str]:
    found = _rows(con, "select * from marts.accounts where account_id = ?", [account_id])
    if not found:
        raise ExplainError(f"account {account_id} is not in marts.accounts of the analytics file")
    account = found[0]
    lines = [
        f"{account['account_name']} ({account_id}), segment {account['segment_key']}, "
        f"as of {account['as_of_date']} (run {account['run_id']})",
        f"  state   {account['state']} ({account['state_reason']}) since "
        f"{account['state_entered_date']}",
        f"  owner   {account['owner_name']} ({account['owner_id']}, {account['owner_kind']})",
        f"  fit     {account['fit_score']} tier {account['fit_tier']}: "
        f"{account['fit_explanation'] or 'no component'}",
        f"  timing  {account['timing_score']}, strongest signal "
        f"{account['strongest_signal'] or 'none'}"
        + (" (hot)" if account["is_hot"] else " (in market)" if account["is_in_market"] else ""),
        f"  priority {account['priority_score']}",
        "",
        "Decisions:",
    ]
    # Each decision with what became of it in the CRM: a killed run's re-run may have
    # superseded it, a guard held it, the CRM refused it.
    decisions = _rows(
        con,
        "select decision.*, outcome.outcome from decisions.book_decisions as decision "
        "left join decisions.book_decision_outcomes as outcome using (decision_id) "
        "where decision.account_id = ? "
        "order by decision.as_of_date, decision.run_id, decision.decision_kind",
        [account_id],
    )
    for decision in decisions:
        lines.append(
            f"  {decision['as_of_date']}  {decision['decision_kind']:<15} "
            f"{decision['from_owner_id']} -> {decision['to_owner_id']} "
            f"({decision['from_state']} -> {decision['to_state']}), reason {decision['reason']}, "
            f"outcome {decision['outcome'] or 'pending'}: {decision['rule']}"
        )
    if not decisions:
        lines.append("  none")
    lines += ["", *_last_candidacy(con, account_id)]
    return lines


def _last_candidacy(con: duckdb.DuckDBPyConnection, account_id: str) -> list[str]:
    """What the last run that considered the account decided, and why."""
    if not _has_table(con, "decisions", "run_candidates"):
        return ["Last run: no candidate history in this analytics file"]
    found = _rows(
        con,
        "select * from decisions.run_candidates where account_id = ? "
        "order by as_of_date desc, run_id desc limit 1",
        [account_id],
    )
    if not found:
        return ["Last run: never a pool candidate (it was in a book or out of scope)"]
    candidate = found[0]
    header = f"Last run that considered it ({candidate['as_of_date']}, run {candidate['run_id']}):"
    if candidate["is_chosen"]:
        return [
            header,
            f"  chosen: {candidate['decision_kind']} to {candidate['to_owner_id']} "
            f"({candidate['slot_kind']} slot, pick {candidate['pick_number']}, "
            f"round {candidate['round_number']})",
        ]
    last = con.execute(
        "select max(segment_rank) from decisions.run_candidates "
        "where run_id = ? and segment_key = ? and is_chosen",
        [candidate["run_id"], candidate["segment_key"]],
    ).fetchone()
    values = {**candidate, "last_rank": last[0] if last and last[0] is not None else "none"}
    reason = candidate["exclusion_reason"]
    text = EXCLUSION_TEXT.get(reason, reason).format(**values)
    return [header, f"  held in the pool: {reason}: {text}"]
