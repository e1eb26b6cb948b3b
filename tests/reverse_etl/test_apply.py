"""Write-back against the local CRM: dry run, conflicts, faults, permanent errors, guards."""

from __future__ import annotations

import logging
from collections import Counter

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
            "select record_id, outcome, attempts, error_code, error_message from ops.sync_log "
            "where run_id = ? and sobject = 'Account' order by record_id",
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
    for _obj, acc, field, _before, after in dry.plan_rows:
        assert world.crm_values(acc)[field] == after, (acc, field)
    planned_moves = sorted((a, b, t) for _o, a, f, b, t in dry.plan_rows if f == "OwnerId")
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
    assert [(c.sobject, c.record_id, c.field, c.current) for c in report.conflicts] == [
        ("Account", victim, "OwnerId", someone)
    ]
    assert world.crm_values(victim)["OwnerId"] == someone  # not overwritten
    assert victim not in {a for a, _o, _n in world.owner_history(hist)}
    log_rows = {r[0]: r for r in _sync_log(world, "run-1")}
    assert log_rows[victim][1] == "conflict"
    assert someone in log_rows[victim][4]


def _retry_after_violations(requests: list[dict]) -> tuple[list[str], list[float]]:
    """Per client, every request after a 429/503 carrying Retry-After at time t must come at
    t + Retry-After or later (times: the server's arrival clock, the fake clock the client
    sleeps on). Returns (violations, each honoured gap minus its Retry-After)."""
    violations, margins = [], []
    by_client: dict[str | None, list[dict]] = {}
    for req in requests:
        by_client.setdefault(req["client_id"], []).append(req)
    for client, reqs in by_client.items():
        for told, following in zip(reqs, reqs[1:], strict=False):
            if told["status"] in (429, 503) and told["retry_after"] is not None:
                gap = following["received_s"] - told["received_s"]
                margins.append(gap - told["retry_after"])
                if gap < told["retry_after"]:
                    violations.append(
                        f"{client}: seq {following['seq']} came {gap:.3f}s after seq "
                        f"{told['seq']} ({told['status']}, Retry-After {told['retry_after']})"
                    )
    return violations, margins


def test_transient_storm_applies_every_change_exactly_once_and_rerun_applies_nothing(
    tmp_path,  # noqa: ANN001
) -> None:
    """A transient-error storm: 5% UNABLE_TO_LOCK_ROW, 2% 503, 1% 429 (both with Retry-After) and an
    expired session, twice, mid-run. Small batches, so the 1% and 2% shares hit real calls."""
    n = 1800
    world = build_world(tmp_path, n_accounts=n, seed=7)
    storm = WritePolicy(pool_users=(POOL_USERNAME,), batch_size=10, read_chunk=50)
    try:
        wanted = _rotate_owners(world, world.accounts[:n])
        world.sync_changes("run-1", wanted)
        plan = plan_write_back(world.warehouse, "run-1", policy=storm, clock=fixed_clock)
        faults = world.server.faults
        locks = faults.add("lock_rows", path="composite/sobjects", share=0.05)
        unavailable = faults.add("unavailable", path="*", share=0.02, retry_after=1)
        limited = faults.add("rate_limit", path="*", share=0.01, retry_after=2)
        expiries = [faults.add("expired_session", path="*", after=a, times=1) for a in (40, 160)]
        world.server.api.monotonic = world.time  # the log's arrival times: the writer's clock
        conn = world.connect()
        seq, hist = world.server.last_request_seq(), world.history_seq()
        report = apply_plan(
            conn, world.warehouse, plan, policy=storm, clock=fixed_clock, sleep=world.time.sleep
        )
        requests = world.server.request_log(seq)

        # 100% applied within the run, exactly once each.
        assert report.outcomes == {"applied": n}
        history = world.owner_history(hist)
        assert sorted(a for a, _o, _n in history) == sorted(wanted)
        assert all(world.crm_values(a)["OwnerId"] == w["OwnerId"] for a, w in wanted.items())
        # The storm really happened: every kind of fault fired.
        assert locks.fired and unavailable.fired and limited.fired
        assert [f.fired for f in expiries] == [1, 1]
        # No request before its Retry-After, per client, from the CRM's own request log.
        told = [r for r in requests if r["status"] in (429, 503)]
        assert told and all(r["retry_after"] is not None for r in told)
        violations, margins = _retry_after_violations(requests)
        assert violations == [] and len(margins) == len(told)
        # <= 5 attempts for any record; some records did need more than one.
        attempts = [r[2] for r in _sync_log(world, "run-1")]
        histogram = dict(sorted(Counter(attempts).items()))
        assert len(attempts) == n and max(attempts) <= 5 and max(attempts) > 1
        # Exactly one re-login per expiry: one token request (after the first login) each.
        logins = [r for r in requests if r["path"].endswith("/oauth2/token") and r["status"] == 200]
        assert conn.relogin_count == len(expiries) == len(logins)
        waits = world.time.sleeps
        print(
            f"\nstorm: {n} changes, {report.outcomes['applied']} applied in the run; "
            f"{len(requests)} requests ({report.api_calls * 1000 / n:.1f} API calls per 1,000); "
            f"attempts histogram {histogram}; {report.retried_records} records retried; "
            f"faults fired: lock {locks.fired}, 503 {unavailable.fired}, 429 {limited.fired}, "
            f"expired session {sum(f.fired for f in expiries)}; re-logins {conn.relogin_count}; "
            f"waits {len(waits)} totalling {sum(waits):.1f}s (fake clock); "
            f"Retry-After honoured {len(margins)}/{len(told)}, "
            f"min margin {min(margins):.3f}s"
        )

        # Re-running the same run applies nothing: the ledger already holds every outcome.
        faults.clear()
        seq = world.server.last_request_seq()
        again = apply_plan(conn, world.warehouse, plan, policy=storm, clock=fixed_clock)
        assert world.server.write_calls(seq) == 0
        assert again.outcomes == {"applied": n}
        # Re-running the as-of date with a stale sync model (new run id, same desired values):
        # the re-read finds every value in place, so no write call is made.
        world.sync_changes("run-2", wanted)
        plan2 = plan_write_back(world.warehouse, "run-2", policy=storm, clock=fixed_clock)
        assert plan2.changes == ()  # the fresh read already holds the desired values
        report2 = apply_plan(conn, world.warehouse, plan2, policy=storm, clock=fixed_clock)
        assert report2.write_calls == 0 and world.server.write_calls(seq) == 0
        assert len(world.owner_history(hist)) == n
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


def test_collections_path_reads_up_to_2000_records_in_one_call(tmp_path) -> None:  # noqa: ANN001
    """The call budget (<= 10 per 1,000 changes): 1,500 changes = 1 re-read + 8 writes + 1
    read-back; a SOQL `Id IN (...)` re-read fits ~500 ids in its URL and would need 3 + 3."""
    world = build_world(tmp_path, n_accounts=1500)
    try:
        world.sync_changes("run-1", _rotate_owners(world, world.accounts))
        plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
        seq = world.server.last_request_seq()
        report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
        assert report.outcomes == {"applied": 1500}
        paths = Counter(
            (r["method"], r["path"].split("/data/")[-1].split("/", 1)[-1])
            for r in world.server.request_log(seq)
            if "oauth2" not in r["path"]
        )
        assert paths == {
            ("POST", "composite/sobjects/Account"): 2,
            ("PATCH", "composite/sobjects"): 8,
        }
        assert report.api_calls == 10
    finally:
        world.server.stop()


def test_api_budget_guard_stops_before_the_cap_and_leaves_the_rest_planned(tmp_path) -> None:  # noqa: ANN001
    world = build_world(tmp_path, n_accounts=1500, api_limit=1000)
    try:
        wanted = _rotate_owners(world, world.accounts)
        world.sync_changes("run-1", wanted)
        plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
        conn = world.connect()
        with world.store.connection() as con, con:
            key = f"api_usage:{world.store.clock.today().isoformat()}"
            # 5 calls left under the 85% cap (850): the re-read, then each write needs room for
            # itself and the read-back, so 3 of the 8 writes go out and their read-back runs.
            con.execute("INSERT OR REPLACE INTO _meta(key, value) VALUES (?, '845')", (key,))
        report = apply_plan(conn, world.warehouse, plan, clock=fixed_clock)
        assert report.stopped_by_budget
        used, limit = conn.api_usage or (0, 0)
        assert limit == 1000 and used <= 850
        counts = ledger.counts(world.warehouse, "run-1")
        assert counts == {"applied": 600, "planned": 900}
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
    assert {c.record_id for c in plan2.changes} == locked
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
