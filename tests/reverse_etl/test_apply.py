"""Write-back against the local CRM: dry run, conflicts, faults, permanent errors, guards."""

from __future__ import annotations

import logging

import duckdb

from reverse_etl import WritePolicy, apply_plan, ledger, plan_write_back
from tests.reverse_etl.wb_world import POOL_USERNAME, World, build_world, fixed_clock

log = logging.getLogger(__name__)

POLICY = WritePolicy(pool_users=(POOL_USERNAME,))


def _rotate_owners(world: World, accounts: list[str], shift: int = 1) -> dict[str, dict]:
    """Each account goes to the next rep, with a status change: one owner change each."""
    out = {}
    for acc in accounts:
        current = world.crm_values(acc)["OwnerId"]
        idx = world.reps.index(current)
        out[acc] = {
            "OwnerId": world.reps[(idx + shift) % len(world.reps)],
            "Distribution_Date__c": "2025-03-03",
            "Distribution_Reason__c": "top_off",
        }
    return out


def _sync_log(world: World, run_id: str) -> list[tuple]:
    with duckdb.connect(str(world.warehouse)) as con:
        return con.execute(
            "select account_id, outcome, attempts, error_code, error_message from ops.sync_log "
            "where run_id = ? order by account_id",
            [run_id],
        ).fetchall()


def test_dry_run_writes_nothing_and_its_plan_is_what_apply_does(world: World) -> None:
    wanted = _rotate_owners(world, world.accounts[:30])
    world.sync_changes("run-1", wanted)
    seq = world.server.last_request_seq()
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    dry = apply_plan(None, world.warehouse, plan, dry_run=True, clock=fixed_clock)  # type: ignore[arg-type]
    assert world.server.request_log(seq) == []  # not a single CRM call, read or write
    assert dry.outcomes == {"planned": 30}
    assert ledger.counts(world.warehouse, "run-1") == {"planned": 30}
    assert len(dry.plan_rows) == 90

    conn = world.connect()
    hist = world.history_seq()
    report = apply_plan(conn, world.warehouse, plan, clock=fixed_clock, sleep=world.time.sleep)
    assert report.outcomes == {"applied": 30}
    # What apply did is exactly the dry-run plan: every planned (field, after) holds in the CRM,
    # and the owner history is exactly the planned owner changes.
    for acc, field, _before, after in dry.plan_rows:
        assert world.crm_values(acc)[field] == after, (acc, field)
    planned_moves = sorted((a, b, t) for a, f, b, t in dry.plan_rows if f == "OwnerId")
    assert sorted(world.owner_history(hist)) == planned_moves
    assert [r[1] for r in _sync_log(world, "run-1")] == ["applied"] * 30
    # Calls: 1 re-read + 1 write (30 records) + 1 read-back.
    assert report.write_calls == 1
    assert report.api_calls == 3


def test_conflict_is_detected_reported_and_left_alone(world: World) -> None:
    wanted = _rotate_owners(world, world.accounts[:10])
    world.sync_changes("run-1", wanted)
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    victim = world.accounts[3]
    someone = world.reps[7]
    assert wanted[victim]["OwnerId"] != someone
    # A manager reassigns the account in the CRM after our read.
    world.store.update("Account", [{"Id": victim, "OwnerId": someone}], actor_id=world.reps[0])
    hist = world.history_seq()
    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.outcomes == {"applied": 9, "conflict": 1}
    assert [(c.account_id, c.field, c.current) for c in report.conflicts] == [
        (victim, "OwnerId", someone)
    ]
    assert world.crm_values(victim)["OwnerId"] == someone  # not overwritten
    assert victim not in {a for a, _o, _n in world.owner_history(hist)}
    log_rows = {r[0]: r for r in _sync_log(world, "run-1")}
    assert log_rows[victim][1] == "conflict"
    assert someone in log_rows[victim][4]


def test_transient_storm_applies_every_change_exactly_once_and_rerun_applies_nothing(
    tmp_path,  # noqa: ANN001
) -> None:
    world = build_world(tmp_path, n_accounts=600, seed=7)
    try:
        wanted = _rotate_owners(world, world.accounts[:500])
        world.sync_changes("run-1", wanted)
        plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
        world.server.faults.add("lock_rows", path="composite/sobjects", share=0.10)
        world.server.faults.add("rate_limit", path="*", share=0.05, retry_after=2)
        world.server.faults.add("unavailable", path="*", share=0.02, retry_after=1)
        world.server.faults.add("expired_session", path="*", after=4, times=1)
        conn = world.connect()
        hist = world.history_seq()
        report = apply_plan(conn, world.warehouse, plan, clock=fixed_clock, sleep=world.time.sleep)
        assert report.outcomes == {"applied": 500}
        assert report.retried_records > 0
        history = world.owner_history(hist)
        assert len(history) == 500
        assert sorted(a for a, _o, _n in history) == sorted(wanted)  # one owner change each
        assert all(world.crm_values(a)["OwnerId"] == w["OwnerId"] for a, w in wanted.items())
        attempts = [r[2] for r in _sync_log(world, "run-1")]
        assert len(attempts) == 500 and max(attempts) <= 5 and max(attempts) > 1
        assert conn.relogin_count == 1
        waits = world.time.sleeps
        assert waits and min(w for w in waits) > 0
        log.info(
            "storm: %d changes, %d API calls (%.1f per 1,000), %d records retried",
            500,
            report.api_calls,
            report.api_calls * 1000 / 500,
            report.retried_records,
        )

        # Re-running the same run applies nothing: the ledger already holds every outcome.
        world.server.faults.clear()
        seq = world.server.last_request_seq()
        again = apply_plan(conn, world.warehouse, plan, clock=fixed_clock)
        assert world.server.write_calls(seq) == 0
        assert again.outcomes == {"applied": 500}
        # Re-running the as-of date with a stale sync model (new run id, same desired values):
        # the re-read finds every value in place, so no write call is made.
        world.sync_changes("run-2", wanted)
        plan2 = plan_write_back(world.warehouse, "run-2", policy=POLICY, clock=fixed_clock)
        assert plan2.changes == ()  # the fresh read already holds the desired values
        report2 = apply_plan(conn, world.warehouse, plan2, clock=fixed_clock)
        assert report2.write_calls == 0 and world.server.write_calls(seq) == 0
        assert len(world.owner_history(hist)) == 500
    finally:
        world.server.stop()


def test_stale_plan_rerun_for_same_date_makes_no_write_calls(world: World) -> None:
    wanted = _rotate_owners(world, world.accounts[:20])
    world.sync_changes("run-1", wanted)
    # A second plan built from the same (now stale) read, under another run id.
    plan1 = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    apply_plan(world.connect(), world.warehouse, plan1, clock=fixed_clock)
    with duckdb.connect(str(world.warehouse)) as con:
        con.execute("update sync.sync_salesforce__accounts set run_id = 'run-1b'")
    plan2 = plan_write_back(world.warehouse, "run-1b", policy=POLICY, clock=fixed_clock)
    assert len(plan2.changes) == 20
    seq = world.server.last_request_seq()
    report = apply_plan(world.connect(), world.warehouse, plan2, clock=fixed_clock)
    assert report.outcomes == {"unchanged": 20}
    assert world.server.write_calls(seq) == 0


def test_permanent_errors_are_rejected_with_crm_code_matched_by_id(world: World) -> None:
    accs = world.accounts[:12]
    inactive = world.store.insert(
        "User", [{"Username": "gone@books.local", "Name": "Gone", "IsActive": False,
                  "Book_Role__c": "SDR"}]
    )[0]  # fmt: skip
    wanted = _rotate_owners(world, accs)
    invalid, to_inactive, deleted = accs[2], accs[5], accs[9]
    wanted[to_inactive]["OwnerId"] = inactive
    world.sync_changes("run-1", wanted)
    world.store.update("Account", [{"Id": invalid, "Name": "INVALID"}])
    world.store.delete("Account", [deleted])
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    seq = world.server.last_request_seq()
    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.outcomes == {"applied": 9, "rejected": 3}, _sync_log(world, "run-1")
    codes = {r[0]: r[3] for r in _sync_log(world, "run-1") if r[1] == "rejected"}
    assert codes == {
        invalid: "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        to_inactive: "INACTIVE_OWNER_OR_USER",
        deleted: "ENTITY_IS_DELETED",
    }
    assert all(r[2] == 1 for r in _sync_log(world, "run-1"))  # never retried unchanged
    assert world.server.write_calls(seq) == 1
    # Re-applying the run does not send the rejected rows again.
    seq = world.server.last_request_seq()
    apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert world.server.write_calls(seq) == 0


def test_api_budget_guard_stops_before_the_cap_and_leaves_the_rest_planned(tmp_path) -> None:  # noqa: ANN001
    world = build_world(tmp_path, n_accounts=1500, api_limit=1000)
    try:
        wanted = _rotate_owners(world, world.accounts)
        world.sync_changes("run-1", wanted)
        plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
        conn = world.connect()
        with world.store.connection() as con, con:
            key = f"api_usage:{world.store.clock.today().isoformat()}"
            con.execute("INSERT OR REPLACE INTO _meta(key, value) VALUES (?, '840')", (key,))
        report = apply_plan(conn, world.warehouse, plan, clock=fixed_clock)
        assert report.stopped_by_budget
        used, limit = conn.api_usage or (0, 0)
        assert limit == 1000 and used <= 850
        counts = ledger.counts(world.warehouse, "run-1")
        assert counts.get("applied", 0) > 0 and counts.get("planned", 0) > 0
        assert set(counts) == {"applied", "planned"}
        assert counts["applied"] + counts["planned"] == 1500
    finally:
        world.server.stop()


def test_blast_radius_blocks_60_percent_retrieval_and_override_lets_it_through(
    world: World,
) -> None:
    retrieved = world.accounts[:60]
    world.sync_changes(
        "run-1", {a: {"OwnerId": world.pool, "Book_Status__c": "resting"} for a in retrieved}
    )
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    assert plan.is_blocked and plan.moves == 60 and plan.owned_accounts == 100
    assert "60 of 100 owned accounts" in plan.blocked_reasons[0]
    seq = world.server.last_request_seq()
    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.is_blocked
    assert [r for r in world.server.request_log(seq) if "/services/data" in r["path"]] == []
    with duckdb.connect(str(world.warehouse)) as con:
        status, reasons = con.execute(
            "select status, blocked_reasons from ops.write_plans where run_id = 'run-1'"
        ).fetchall()[0]
    assert status == "blocked" and "max_move_share_of_owned" in reasons
    assert ledger.counts(world.warehouse, "run-1") == {"planned": 60}  # kept for a person

    report = apply_plan(
        world.connect(), world.warehouse, plan, override_guard=True, clock=fixed_clock
    )
    assert report.outcomes == {"applied": 60}
    assert all(world.crm_values(a)["OwnerId"] == world.pool for a in retrieved)


def test_persistent_lock_rows_are_the_only_ones_sent_next_run(world: World) -> None:
    wanted = _rotate_owners(world, world.accounts[:40])
    world.sync_changes("run-1", wanted)
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    locked = set(world.accounts[5:8])
    world.server.faults.add("persistent_lock", path="composite/sobjects", ids=locked)
    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.outcomes == {"applied": 37, "retry": 3}
    assert {r[0]: r[2] for r in _sync_log(world, "run-1") if r[1] == "retry"} == {
        a: 5 for a in locked
    }
    world.server.faults.clear()
    # Next run: a fresh read, the same desired values; only the 3 locked rows still differ.
    world.sync_changes("run-2", wanted)
    plan2 = plan_write_back(world.warehouse, "run-2", policy=POLICY, clock=fixed_clock)
    assert {c.account_id for c in plan2.changes} == locked
    assert ledger.counts(world.warehouse, "run-1") == {"applied": 37, "superseded": 3}
    seq = world.server.last_request_seq()
    report2 = apply_plan(world.connect(), world.warehouse, plan2, clock=fixed_clock)
    assert report2.outcomes == {"applied": 3}
    sent = [r for r in world.server.request_log(seq) if r["is_write"]]
    assert len(sent) == 1 and sent[0]["records"] == 3


def test_bulk_path_above_threshold_matches_results_by_id(world: World) -> None:
    wanted = _rotate_owners(world, world.accounts[:80])
    invalid = world.accounts[11]
    world.sync_changes("run-1", wanted)
    world.store.update("Account", [{"Id": invalid, "Name": "INVALID"}])
    policy = WritePolicy(pool_users=(POOL_USERNAME,), bulk_threshold=50)
    plan = plan_write_back(world.warehouse, "run-1", policy=policy, clock=fixed_clock)
    world.server.faults.add("lock_rows", path="jobs/ingest*", share=0.1)
    hist = world.history_seq()
    seq = world.server.last_request_seq()
    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.outcomes == {"applied": 79, "rejected": 1}
    assert report.rejected[0][:2] == (invalid, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert sorted(a for a, _o, _n in world.owner_history(hist)) == sorted(set(wanted) - {invalid})
    writes = [r["path"] for r in world.server.request_log(seq) if r["is_write"]]
    # The first round (80 rows > threshold 50) goes through one Bulk 2.0 job; the few locked
    # rows retried in later rounds are below the threshold and go through Collections.
    assert writes[0].endswith("/jobs/ingest")
    assert sum(1 for w in writes if w.endswith("/jobs/ingest")) == 1
