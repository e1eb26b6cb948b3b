"""Lead owner write-back (R7 lead routing) through the same plan -> ledger -> apply path as
accounts: applied once, conflicts left alone, re-runs apply nothing, dry run equals apply."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import duckdb
import polars as pl
import pytest

from local_crm.db import make_id
from reverse_etl import WritePolicy, apply_plan, build_plan, ledger, plan_write_back
from reverse_etl.guards import GuardContext
from reverse_etl.plan import LEAD, PlanError, sync_rows_from_wide
from tests.reverse_etl.wb_world import POOL_USERNAME, World, fixed_clock

POLICY = WritePolicy(pool_users=(POOL_USERNAME,))


@pytest.fixture
def owner_writes(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """Counts OwnerId changes the CRM commits per Lead (the local CRM keeps no LeadHistory)."""
    changed: Counter[tuple[str, str]] = Counter()
    original = world.store.update

    def spy(object_name: str, records, *args, **kwargs):  # noqa: ANN001, ANN202
        before = {}
        if object_name == "Lead":
            before = {r["Id"]: world.lead_owner(r["Id"]) for r in records if r.get("Id")}
        results = original(object_name, records, *args, **kwargs)
        for rec, result in zip(records, results, strict=True):
            if object_name == "Lead" and result.success and "OwnerId" in rec:
                if rec["OwnerId"] != before.get(rec["Id"]):
                    changed[(result.id, rec["OwnerId"])] += 1
        return results

    monkeypatch.setattr(world.store, "update", spy)
    yield changed


def _route_leads(world: World, leads: list[str], shift: int = 3) -> dict[str, str]:
    """Each lead goes to another rep (as if its matched account's owner changed)."""
    out = {}
    for lead in leads:
        idx = world.reps.index(world.lead_owner(lead))
        out[lead] = world.reps[(idx + shift) % len(world.reps)]
    return out


def _sync_log(world: World, run_id: str, sobject: str) -> list[tuple]:
    with duckdb.connect(str(world.warehouse)) as con:
        return con.execute(
            "select record_id, outcome, error_code, error_message from ops.sync_log "
            "where run_id = ? and sobject = ? order by record_id",
            [run_id, sobject],
        ).fetchall()


def test_dry_run_equals_apply_lead_owner_applied_once_and_rerun_applies_nothing(
    world: World, owner_writes: Counter
) -> None:
    account = world.accounts[0]
    accounts = {account: {"OwnerId": world.reps[5], "Book_Status__c": "working"}}
    leads = _route_leads(world, world.leads[:6])
    world.sync_changes("run-1", accounts, lead_owners=leads)

    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    assert plan.count_by_object() == {"Account": 1, "Lead": 6}
    seq = world.server.last_request_seq()
    dry = apply_plan(None, world.warehouse, plan, dry_run=True, clock=fixed_clock)  # type: ignore[arg-type]
    assert world.server.request_log(seq) == []
    assert dry.outcomes_by_object == {"Account": {"planned": 1}, "Lead": {"planned": 6}}
    lead_rows = [r for r in dry.plan_rows if r[0] == "Lead"]
    assert sorted((rec, after) for _o, rec, _f, _b, after in lead_rows) == sorted(leads.items())
    assert {f for _o, _r, f, _b, _a in lead_rows} == {"OwnerId"}
    assert all(before == world.lead_owner(rec) for _o, rec, _f, before, _a in lead_rows)

    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.outcomes_by_object == {"Account": {"applied": 1}, "Lead": {"applied": 6}}
    # What apply did is exactly the dry-run plan, for both objects.
    for sobject, rec, field, _before, after in dry.plan_rows:
        now = world.lead_owner(rec) if sobject == "Lead" else world.crm_values(rec)[field]
        assert now == after, (sobject, rec, field)
    assert dict(owner_writes) == {(lead, owner): 1 for lead, owner in leads.items()}
    assert [r[1] for r in _sync_log(world, "run-1", "Lead")] == ["applied"] * 6
    # One write call per object (a collection never mixes objects).
    assert report.write_calls == 2

    # Re-running the run applies nothing; a fresh plan of the same decisions plans nothing.
    seq = world.server.last_request_seq()
    again = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert world.server.write_calls(seq) == 0
    assert again.outcomes_by_object == report.outcomes_by_object
    world.sync_changes("run-2", accounts, lead_owners=leads)
    plan2 = plan_write_back(world.warehouse, "run-2", policy=POLICY, clock=fixed_clock)
    assert plan2.changes == ()
    apply_plan(world.connect(), world.warehouse, plan2, clock=fixed_clock)
    assert world.server.write_calls(seq) == 0
    assert sum(owner_writes.values()) == 6


def test_lead_owner_changed_by_someone_is_a_conflict_left_alone(
    world: World, owner_writes: Counter
) -> None:
    leads = _route_leads(world, world.leads[:4])
    world.sync_changes("run-1", {}, lead_owners=leads)
    plan = plan_write_back(world.warehouse, "run-1", policy=POLICY, clock=fixed_clock)
    victim = world.leads[2]
    someone = world.reps[9]
    assert someone not in (leads[victim], world.lead_owner(victim))
    # A marketing user reassigns the lead after our read.
    world.store.update("Lead", [{"Id": victim, "OwnerId": someone}], actor_id=world.reps[0])
    owner_writes.clear()

    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.outcomes_by_object == {"Lead": {"applied": 3, "conflict": 1}}
    assert [(c.sobject, c.record_id, c.field, c.current) for c in report.conflicts] == [
        ("Lead", victim, "OwnerId", someone)
    ]
    assert world.lead_owner(victim) == someone  # not overwritten
    assert victim not in {lead for lead, _owner in owner_writes}
    logged = {r[0]: r for r in _sync_log(world, "run-1", "Lead")}
    assert logged[victim][1:3] == ("conflict", "CONFLICT")
    assert someone in logged[victim][3]


def test_leads_above_bulk_threshold_go_in_one_lead_bulk_job(
    world: World, owner_writes: Counter
) -> None:
    leads = _route_leads(world, world.leads[:8])
    world.sync_changes("run-1", {}, lead_owners=leads)
    policy = WritePolicy(pool_users=(POOL_USERNAME,), bulk_threshold=5)
    plan = plan_write_back(world.warehouse, "run-1", policy=policy, clock=fixed_clock)
    seq = world.server.last_request_seq()
    report = apply_plan(world.connect(), world.warehouse, plan, clock=fixed_clock)
    assert report.outcomes == {"applied": 8}
    jobs = [r for r in world.server.request_log(seq) if r["path"].endswith("/jobs/ingest")]
    assert len(jobs) == 1
    assert dict(owner_writes) == {(lead, owner): 1 for lead, owner in leads.items()}


LEADS = [make_id("00Q", i) for i in range(1, 5)]
ACCS = [make_id("001", i) for i in range(1, 5)]
REPS = [make_id("005", i) for i in range(1, 5)]
POOL = make_id("005", 99)


def _lead_rows(items: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [("Lead", *item) for item in items],
        schema={"sobject": pl.Utf8, "record_id": pl.Utf8, "field": pl.Utf8,
                "before_value": pl.Utf8, "after_value": pl.Utf8},
        orient="row",
    )  # fmt: skip


def test_lead_allowlist_is_owner_only_and_ids_must_be_leads() -> None:
    with pytest.raises(PlanError, match=rf"Lead {LEADS[0]}.*'Status'.*Lead write allowlist"):
        build_plan(_lead_rows([(LEADS[0], "Status", "Open", "Working")]), "run-1")
    with pytest.raises(PlanError, match=rf"malformed Lead id '{ACCS[0]}'.*'00Q'"):
        build_plan(_lead_rows([(ACCS[0], "OwnerId", REPS[0], REPS[1])]), "run-1")
    wide = pl.DataFrame({"lead_id": [LEADS[0]], "owner_id": [REPS[1]], "status": ["Working"]})
    with pytest.raises(PlanError, match="before_owner_id"):
        sync_rows_from_wide(wide, LEAD)


def test_leads_never_count_as_moves_and_keys_differ_from_accounts() -> None:
    """Blast-radius guards count Account moves only: a lead follows its account's owner."""
    context = GuardContext(frozenset({POOL}), {REPS[0]: 4, POOL: 100})
    rows = pl.concat(
        [
            _lead_rows([(lead, "OwnerId", REPS[0], POOL) for lead in LEADS]),
            _lead_rows([(ACCS[0], "OwnerId", REPS[0], REPS[1])]).with_columns(
                sobject=pl.lit("Account")
            ),
        ]
    )
    plan = build_plan(rows, "run-1", context=context)
    assert plan.moves == 0 and not plan.is_blocked
    assert plan.count_by_object() == {"Account": 1, "Lead": 4}
    assert len({c.change_key for c in plan.changes}) == 5
    with pytest.raises(PlanError, match="object 'Contact'"):
        build_plan(rows.with_columns(sobject=pl.lit("Contact")), "run-1")


def test_a_ledger_from_before_leads_is_migrated_in_place(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema ops")
        con.execute(
            "create table ops.sync_log (change_key varchar, run_id varchar, account_id varchar, "
            "outcome varchar)"
        )
        con.execute(f"insert into ops.sync_log values ('k', 'run-0', '{ACCS[0]}', 'applied')")
    assert ledger.counts(path) == {}
    with duckdb.connect(str(path)) as con:
        assert con.execute("select sobject, record_id from ops.sync_log").fetchall() == [
            ("Account", ACCS[0])
        ]
