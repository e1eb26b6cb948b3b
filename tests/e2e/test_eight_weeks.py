"""`books_cycle` weekly over 8 simulated weeks on a generated world.

Between runs reps touch some of their accounts (tests/e2e/simulate.py). Checked after every
run against the CRM and the warehouse: stale accounts are retrieved to pool users and rest,
rested accounts come back to the pool and are distributed again, books refill to target, every
owner change in the CRM has exactly one `book_decisions` row, and re-running the last week
writes nothing. Run with `-s` to see the per-week table.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

import duckdb
import pytest

from orchestration.runner import analytics_path
from tests.e2e.conftest import REST_DAYS_RETRIEVED, WEEKS, Simulation, WeekSnapshot

pytestmark = [pytest.mark.slow, pytest.mark.long_pole]

OWNER_MOVES = ("return", "release", "retrieve", "signal_route", "distribute")
NEW_ACCOUNT_KINDS = ("distribute", "signal_route")
BOOK_STATES = ("working", "stale")


def week_table(sim: Simulation) -> str:
    lines = [
        "week  as-of       tasks  retrieved  distributed  routed  returned  ready-pool  secs",
    ]
    for w in sim.weeks:
        ready = sum(1 for a in w.accounts_after.values() if a["state"] == "ready")
        lines.append(
            f"{w.week:>4}  {w.as_of}  {w.tasks_logged:>5}  {len(w.kinds('retrieve')):>9}  "
            f"{len(w.kinds('distribute')):>11}  {len(w.kinds('signal_route')):>6}  "
            f"{len(w.kinds('return')):>8}  {ready:>10}  {w.seconds:>4.0f}"
        )
    lines.append(", ".join(f"{k} {v:.0f}s" for k, v in sim.timings.items()))
    return "\n".join(lines)


def test_every_week_ran_and_its_summary_matches_the_warehouse(simulation: Simulation) -> None:
    print("\n" + week_table(simulation))
    assert len(simulation.weeks) == WEEKS
    for w in simulation.weeks:
        assert w.summary.success, w.summary.render()
        recorded = Counter(d["decision_kind"] for d in w.decisions)
        assert dict(recorded) == w.summary.decisions_by_kind, f"week {w.week}"
        assert {d["as_of_date"] for d in w.decisions} <= {w.as_of}, f"week {w.week}"
    assert all(w.tasks_logged > 0 for w in simulation.weeks[1:])


def test_stale_accounts_are_retrieved_to_pool_users_with_a_rest(simulation: Simulation) -> None:
    pool = simulation.pool_user_ids
    weeks_with_retrievals = []
    for w in simulation.weeks:
        retrieved = w.kinds("retrieve")
        if retrieved:
            weeks_with_retrievals.append(w.week)
        for d in retrieved:
            where = f"week {w.week} account {d['account_id']}"
            assert d["from_state"] == "stale", where
            assert d["from_owner_id"] not in pool, where
            assert d["to_owner_id"] in pool, where
            assert d["rest_until_date"] == w.as_of + timedelta(days=REST_DAYS_RETRIEVED), where
            crm = w.crm_accounts[d["account_id"]]
            assert crm["owner_id"] == d["to_owner_id"], where
            assert crm["rest_until"] == d["rest_until_date"].isoformat(), where
            assert crm["book_status"] == "resting", where
    # Not only the launch run: accounts the simulated reps stop touching go stale later.
    assert any(k > 0 for k in weeks_with_retrievals), weeks_with_retrievals


def _retrievals(sim: Simulation) -> list[tuple[WeekSnapshot, dict[str, Any]]]:
    return [(w, d) for w in sim.weeks for d in w.kinds("retrieve")]


def test_retrieved_accounts_rest_then_return_to_the_pool(simulation: Simulation) -> None:
    redistributed = 0
    rest_ended = 0
    for retrieved_in, d in _retrievals(simulation):
        account, rest_until = d["account_id"], d["rest_until_date"]
        for w in simulation.weeks[retrieved_in.week + 1 :]:
            after = w.accounts_after[account]
            moved = [m for m in w.kinds(*NEW_ACCOUNT_KINDS) if m["account_id"] == account]
            where = f"account {account} retrieved week {retrieved_in.week}, week {w.week}"
            if w.as_of <= rest_until:
                assert after["state_before"] == "resting", where
                assert not moved, f"{where}: distributed before its rest ended {rest_until}"
                continue
            # The first run after the rest: the account is back in the pool, ready.
            if w.as_of - timedelta(days=7) <= rest_until:
                rest_ended += 1
                assert after["state_before"] == "ready", where
            if moved:
                assert moved[0]["from_state"] == "ready", where
                redistributed += 1
            if after["state_before"] != "ready":
                break  # owned again (or otherwise moved on): no longer this retrieval's story
    assert rest_ended > 0, "no retrieved account reached the end of its rest inside 8 weeks"
    assert redistributed > 0, "no rested account was distributed again after its rest"


def _book_shortfalls(w: WeekSnapshot) -> list[str]:
    """Eligible reps left with room, budget and a slot that a ready unit of their segment fits.

    Fit slots take any ready unit, intent slots only in-market ones; a unit (family) needs one
    slot per member; the rep who returned a member is blocked from it during its rest.
    """
    reps: dict[str, dict[str, Any]] = {}
    for row in w.capacity:
        rep = reps.setdefault(
            row["rep_id"],
            {"target": 0, "budget": row["max_new_per_run"], "segment": row["segment_key"]},
        )
        rep["target"] += row["capacity"]
        rep[row["slot_kind"]] = row["open_slots"]
    books = Counter(a["owner_id"] for a in w.accounts_after.values() if a["state"] in BOOK_STATES)
    new = Counter((d["to_owner_id"], d["slot_kind"]) for d in w.kinds(*NEW_ACCOUNT_KINDS))
    taken = {d["account_id"] for d in w.kinds(*NEW_ACCOUNT_KINDS)}
    units: dict[tuple[str, str], dict[str, Any]] = {}
    for c in w.candidates:
        if c["account_id"] in taken:
            continue
        unit = units.setdefault(
            (c["segment_key"], c["unit_id"]),
            {"weight": c["unit_weight"], "in_market": c["is_unit_in_market"], "blocked": set()},
        )
        unit["blocked"].add(c["blocked_rep_id"])
    out = []
    for rep_id, rep in sorted(reps.items()):
        got = new[(rep_id, "fit")] + new[(rep_id, "intent")]
        room = min(rep["target"] - books[rep_id], rep["budget"] - got)
        fit_open = rep.get("fit", 0) - new[(rep_id, "fit")]
        intent_open = rep.get("intent", 0) - new[(rep_id, "intent")]
        fitting = [
            key[1]
            for key, u in units.items()
            if key[0] == rep["segment"]
            and rep_id not in u["blocked"]
            and u["weight"] <= room
            and (u["weight"] <= fit_open or (u["in_market"] and u["weight"] <= intent_open))
        ]
        if fitting:
            out.append(
                f"week {w.week}: rep {rep_id} ({rep['segment']}) book {books[rep_id]} of "
                f"{rep['target']} (open fit {fit_open}, intent {intent_open}), got {got} of "
                f"budget {rep['budget']}, while {len(fitting)} fitting ready units stay in the "
                f"pool (e.g. {fitting[0]})"
            )
    return out


def test_books_refill_to_target_or_the_segment_pool_runs_dry(simulation: Simulation) -> None:
    shortfalls = [s for w in simulation.weeks for s in _book_shortfalls(w)]
    assert not shortfalls, "\n".join(shortfalls[:20])
    refilled_later = sum(len(w.kinds(*NEW_ACCOUNT_KINDS)) for w in simulation.weeks[1:])
    assert refilled_later > 0, "no account was distributed after the launch run"


def test_no_rep_is_filled_beyond_target(simulation: Simulation) -> None:
    """Top-off fills open slots (target - current): a rep that gets new accounts ends <= target."""
    overfilled = []
    for w in simulation.weeks:
        targets: Counter[str] = Counter()
        for row in w.capacity:
            targets[row["rep_id"]] += row["capacity"]
        books = Counter(
            a["owner_id"] for a in w.accounts_after.values() if a["state"] in BOOK_STATES
        )
        new = Counter(d["to_owner_id"] for d in w.kinds(*NEW_ACCOUNT_KINDS))
        overfilled += [
            f"week {w.week}: rep {rep} got {n} new accounts, book now {books[rep]} "
            f"> target {targets[rep]}"
            for rep, n in sorted(new.items())
            if books[rep] > targets[rep]
        ]
    assert not overfilled, "\n".join(overfilled[:20])


def test_the_crm_holds_what_each_run_decided(simulation: Simulation) -> None:
    for w in simulation.weeks:
        wrong = [
            (account, after["owner_id"], w.crm_accounts[account]["owner_id"])
            for account, after in w.accounts_after.items()
            if w.crm_accounts[account]["owner_id"] != after["owner_id"]
        ]
        assert not wrong, f"week {w.week}: decided vs CRM owner differ: {wrong[:5]}"


def test_every_owner_change_has_exactly_one_decision(simulation: Simulation) -> None:
    decided = Counter(
        (d["account_id"], w.as_of, d["from_owner_id"], d["to_owner_id"])
        for w in simulation.weeks
        for d in w.kinds(*OWNER_MOVES)
        if d["from_owner_id"] != d["to_owner_id"]
    )
    changed = Counter(
        (h["account_id"], h["day"], h["old"], h["new"]) for h in simulation.owner_history
    )
    assert changed, "the integration user changed no owner in 8 weeks"
    unexplained = sorted(set(changed) - set(decided))
    unapplied = sorted(set(decided) - set(changed))
    assert not unexplained, f"owner changes without a decision: {unexplained[:5]}"
    assert not unapplied, f"owner decisions missing from AccountHistory: {unapplied[:5]}"
    doubled = sorted(k for k in decided if decided[k] != 1 or changed[k] != 1)
    assert not doubled, f"changes or decisions recorded more than once: {doubled[:5]}"


def test_every_lead_owner_change_has_exactly_one_decision(simulation: Simulation) -> None:
    """Lead routing (R7): each Lead owner the write-back changed has one lead_route decision of
    the same run and owners, each decision was applied once, and the CRM holds the last one.
    The local CRM keeps no LeadHistory, so the write-back's own log stands for the audit."""
    with duckdb.connect(str(simulation.paths.warehouse), read_only=True) as con:
        decided = Counter(
            con.execute(
                "select run_id, lead_id, from_owner_id, to_owner_id from decisions.book_decisions "
                "where decision_kind = 'lead_route'"
            ).fetchall()
        )
        logged = con.execute(
            "select run_id, record_id, before_json, after_json, finished_at from ops.sync_log "
            "where sobject = 'Lead' and outcome = 'applied' order by finished_at"
        ).fetchall()
    assert decided, "no inbound lead was routed in 8 weeks"
    changed = Counter(
        (run, lead, json.loads(before)["OwnerId"], json.loads(after)["OwnerId"])
        for run, lead, before, after, _at in logged
    )
    assert changed == decided, (
        f"unexplained {sorted(set(changed) - set(decided))[:5]}, "
        f"unapplied {sorted(set(decided) - set(changed))[:5]}"
    )
    doubled = sorted(k for k, n in decided.items() if n != 1)
    assert not doubled, f"lead decisions recorded more than once: {doubled[:5]}"
    last = {lead: json.loads(after)["OwnerId"] for _r, lead, _b, after, _at in logged}
    with sqlite3.connect(f"file:{simulation.paths.crm_db}?mode=ro", uri=True) as con:
        owners = dict(con.execute('SELECT "Id", "OwnerId" FROM "Lead"').fetchall())
    assert {lead: owners[lead] for lead in last} == last


def test_rerunning_the_last_week_writes_nothing(simulation: Simulation) -> None:
    rerun = simulation.rerun
    assert rerun is not None and rerun.success, rerun and rerun.render()
    assert rerun.run_id == simulation.weeks[-1].summary.run_id
    assert simulation.rerun_history_rows == 0
    assert simulation.rerun_crm_changed is False, rerun.write_back


def _first(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    row = con.execute(sql).fetchone()
    assert row is not None, f"the 8 weeks produced no account for: {sql}"
    return row[0]


def test_explain_tells_a_distributed_retrieved_held_and_never_chosen_accounts_story(
    simulation: Simulation,
) -> None:
    """`books explain` on the published analytics file after 8 weeks: each kind of account's
    story names what happened to it and, for the last run that considered it, why."""
    analytics = analytics_path(simulation.paths.warehouse)
    latest = (
        "select account_id, is_chosen, exclusion_reason, to_owner_id from ("
        "  select *, row_number() over (partition by account_id"
        "    order by as_of_date desc, run_id desc) as newest"
        "  from decisions.run_candidates) where newest = 1"
    )
    with duckdb.connect(str(analytics), read_only=True) as con:
        distributed = _first(
            con, f"select account_id from ({latest}) where is_chosen order by account_id limit 1"
        )
        distributed_to = _first(
            con, f"select to_owner_id from ({latest}) where account_id = '{distributed}'"
        )
        retrieved = _first(
            con,
            "select account_id from decisions.book_decisions where decision_kind = 'retrieve' "
            "order by account_id limit 1",
        )
        held, held_reason = con.execute(
            f"select account_id, exclusion_reason from ({latest}) where not is_chosen "
            "and account_id in (select account_id from decisions.book_decisions) "
            "order by account_id limit 1"
        ).fetchone()
        never = _first(
            con,
            "select account_id from decisions.run_candidates group by account_id "
            "having not bool_or(is_chosen) and account_id not in "
            "(select account_id from decisions.book_decisions) order by account_id limit 1",
        )

    def explain(account_id: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "books_cli.main", "explain", account_id],
            env={**os.environ, **simulation.paths.as_env()},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    story = explain(distributed)
    assert "distribute" in story and f"chosen: distribute to {distributed_to}" in story, story
    story = explain(retrieved)
    assert " retrieve " in story and "state " in story, story
    story = explain(held)
    assert f"held in the pool: {held_reason}:" in story, story
    story = explain(never)
    assert "Decisions:\n  none" in story and "held in the pool:" in story, story
