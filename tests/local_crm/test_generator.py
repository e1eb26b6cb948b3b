"""World generator: determinism, referential integrity (dirty rows exactly as counted), users and
ownership rules, landing-file flaws, and the documented distributions on a 20k-account world."""

from __future__ import annotations

import csv
import math
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from local_crm.db import CrmStore
from local_crm.generator import LEAD_MIX, RATES, WorldSummary, generate_world
from local_crm.schema import OBJECTS, SIGNAL_TYPES
from policy.loader import load_policy
from policy.paths import resolve_paths

AS_OF = date(2025, 6, 2)


def _build(
    root: Path, *, accounts: int, reps: int, seed: int, months: int = 12, landing: bool = True
):
    db = root / "crm.sqlite"
    summary = generate_world(
        db, accounts=accounts, reps=reps, seed=seed, months=months, as_of=AS_OF,
        landing_dir=root / "landing" if landing else None,
    )  # fmt: skip
    return db, summary


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldSummary]:
    # 15 months so that some activities are older than 365 days (archived).
    return _build(tmp_path_factory.mktemp("small"), accounts=2000, reps=12, seed=11, months=15)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldSummary]:
    return _build(tmp_path_factory.mktemp("big"), accounts=20_000, reps=40, seed=3, landing=False)


def _q(db: Path, sql: str, *args: object) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _one(db: Path, sql: str, *args: object):
    return _q(db, sql, *args)[0][0]


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_database_and_other_seed_differs(small, tmp_path: Path) -> None:
    db, _ = small
    again, _ = _build(tmp_path / "again", accounts=2000, reps=12, seed=11, months=15)
    other, _ = _build(tmp_path / "other", accounts=2000, reps=12, seed=12, months=15)
    h = CrmStore(db).content_hash()
    assert CrmStore(again).content_hash() == h
    assert CrmStore(other).content_hash() != h
    # Landing files are deterministic too.
    for name in ("intent/intent_2025-05-26.csv", "engagement/engagement_2025-06-02.parquet"):
        a = (db.parent / "landing" / name).read_bytes()
        assert a == (again.parent / "landing" / name).read_bytes()


def test_refuses_a_database_that_already_holds_data(small) -> None:
    db, _ = small
    with pytest.raises(ValueError, match="already holds CRM data"):
        generate_world(db, accounts=100, reps=2, seed=1, as_of=AS_OF, landing_dir=None)


# ---------------------------------------------------------------------------- integrity


def _dangling(db: Path) -> dict[tuple[str, str], int]:
    out = {}
    for obj in OBJECTS.values():
        for f in obj.fields:
            if f.type == "reference":
                out[(obj.name, f.name)] = _one(
                    db,
                    f'SELECT COUNT(*) FROM "{obj.name}" t WHERE t."{f.name}" IS NOT NULL AND '
                    f'NOT EXISTS (SELECT 1 FROM "{f.reference_to}" r WHERE r.Id = t."{f.name}")',
                )
    return out


def test_every_reference_resolves_except_the_counted_dirty_rows(small) -> None:
    db, s = small
    expected = {
        ("Account", "ParentId"): s.dirty["parent_missing_ref"],
        ("Contact", "AccountId"): s.dirty["contacts_missing_account"],
        ("Task", "AccountId"): s.dirty["task_missing_account"],
        ("Task", "WhatId"): s.dirty["task_missing_account"],
        ("Event", "AccountId"): s.dirty["event_missing_account"],
        ("Event", "WhatId"): s.dirty["event_missing_account"],
    }
    found = _dangling(db)
    assert {k: v for k, v in found.items() if v} == {k: v for k, v in expected.items() if v}
    assert s.dirty["parent_missing_ref"] >= 1 and s.dirty["contacts_missing_account"] >= 1


def test_dirty_firmographics_and_duplicates_equal_the_counts(small) -> None:
    db, s = small
    d = s.dirty
    assert (
        _one(db, "SELECT COUNT(*) FROM Account WHERE NumberOfEmployees IS NULL")
        == d["employees_missing"]
    )
    assert (
        _one(db, "SELECT COUNT(*) FROM Account WHERE NumberOfEmployees = 0") == d["employees_zero"]
    )
    implausible = _q(db, "SELECT AnnualRevenue FROM Account WHERE NumberOfEmployees = 10000000")
    assert len(implausible) == d["employees_implausible"] > 0
    assert all(r[0] < 1_000_000 for r in implausible)
    assert (
        _one(db, "SELECT COUNT(*) FROM Account WHERE AnnualRevenue IS NULL") == d["revenue_missing"]
    )
    assert _one(db, "SELECT COUNT(*) FROM Account WHERE Website IS NULL") == d["websites_missing"]
    cycles = _one(
        db,
        "SELECT COUNT(*) FROM Account a JOIN Account b ON b.Id = a.ParentId WHERE b.ParentId = a.Id",
    )
    assert cycles == d["parent_cycle_accounts"] >= 2
    non_owner = _one(
        db,
        "SELECT COUNT(*) FROM Account WHERE Return_Requested__c IS NOT NULL "
        "AND Return_Requested_By__c <> OwnerId",
    )
    assert non_owner == d["return_requests_by_non_owner"] == s.return_requests["by_non_owner"]
    by_owner = _one(db, "SELECT COUNT(*) FROM Account WHERE Return_Requested_By__c = OwnerId")
    assert by_owner == s.return_requests["by_owner"] >= 3
    # Malformed websites have no dot-separated host a normaliser could use.
    assert d["websites_malformed"] > 0
    assert d["duplicate_accounts"] == d["duplicate_same_domain"] + d["duplicate_domain_variant"]
    assert d["duplicate_accounts"] == round(2000 * RATES["duplicate_accounts"])


def test_clock_ends_at_as_of_and_every_record_was_created_before(small) -> None:
    db, s = small
    store = CrmStore(db)
    midnight = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC)
    assert store.clock.now() == midnight == s.clock
    for name in OBJECTS:
        if name == "AccountHistory":
            continue
        latest = _one(db, f'SELECT MAX(SystemModstamp) FROM "{name}"')
        assert latest < "2025-06-02T00:00:00.000+0000", name
        assert _one(db, f'SELECT COUNT(*) FROM "{name}" WHERE CreatedDate > SystemModstamp') == 0


def test_activities_older_than_a_year_are_archived(small) -> None:
    db, s = small
    cutoff = (AS_OF - timedelta(days=365)).isoformat()
    for obj in ("Task", "Event"):
        wrong = _one(
            db, f"SELECT COUNT(*) FROM {obj} WHERE IsArchived <> (ActivityDate < ?)", cutoff
        )
        assert wrong == 0
    assert s.counts["archived_activities"] > 0
    assert _one(db, "SELECT MAX(ActivityDate) FROM Task") < AS_OF.isoformat()


# ---------------------------------------------------------------------------- users


def test_users_pool_reps_and_non_book_roles(small) -> None:
    db, _ = small
    pol = load_policy(resolve_paths().policy)
    pool = [
        r[0]
        for r in _q(db, "SELECT Username FROM User WHERE Book_Role__c = 'Pool' ORDER BY Username")
    ]
    assert pool == sorted(pol.crm.pool_users)
    keys = {s.key for s in pol.segments}
    reps = _q(
        db,
        "SELECT Book_Segments__c, IsActive, Ramp_Start_Date__c FROM User WHERE Book_Role__c IN ('SDR','BDR')",
    )
    assert len(reps) == 12
    assert all(seg in keys for seg, _, _ in reps)  # exactly one key, no ';'
    ramp_cut = (AS_OF - timedelta(days=90)).isoformat()
    assert any(r > ramp_cut for _, _, r in reps)
    assert any(active == 0 for _, active, _ in reps)
    others = _q(
        db,
        "SELECT Book_Role__c, Book_Segments__c FROM User WHERE Book_Role__c NOT IN ('SDR','BDR')",
    )
    assert {r for r, _ in others} >= {"AE", "Manager", "Pool", "Admin"}
    assert all(seg is None for _, seg in others)


def test_customers_belong_to_aes_and_have_won_deals(small) -> None:
    db, _ = small
    rows = _q(
        db,
        "SELECT u.Book_Role__c, (SELECT COUNT(*) FROM Opportunity o WHERE o.AccountId = a.Id "
        "AND o.IsWon = 1) FROM Account a JOIN User u ON u.Id = a.OwnerId WHERE a.Type = 'Customer' "
        "AND a.ParentId IS NULL",
    )
    assert rows
    assert all(won >= 1 for _, won in rows)
    assert {role for role, _ in rows} == {"AE"}


# ---------------------------------------------------------------------------- landing files


def test_intent_files_have_the_documented_flaws(small) -> None:
    db, s = small
    folder = db.parent / "landing" / "intent"
    names = sorted(p.name for p in folder.iterdir())
    resend = [n for n in names if n.endswith("_resend.csv")]
    assert len(resend) == 1
    original = folder / resend[0].replace("_resend", "")
    assert original.read_bytes() == (folder / resend[0]).read_bytes()
    bad = []
    known = {r[0] for r in _q(db, "SELECT Website FROM Account WHERE Website IS NOT NULL")}
    assert known
    for name in names:
        with (folder / name).open(newline="") as fh:
            rows = list(csv.reader(fh))
        ok = rows[0] == ["domain", "topic", "score", "week_start_date"] and all(
            len(r) == 4 and r[2].isdigit() for r in rows[1:]
        )
        if not ok:
            bad.append(name)
    assert len(bad) == 1
    # Weekly cadence: file dates are the Monday after the week, except the one late file.
    dates = [date.fromisoformat(n[7:17]) for n in names if not n.endswith("_resend.csv")]
    assert sum(d.weekday() != 0 for d in dates) == 1
    assert s.landing["intent_unknown_domain_rows"] > 0


def test_engagement_exports_match_the_contract(small) -> None:
    db, s = small
    files = sorted((db.parent / "landing" / "engagement").glob("engagement_*.parquet"))
    assert len(files) == 4
    tables = [pq.read_table(f) for f in files]
    assert tables[0].column_names == [
        "activity_id", "account_domain", "contact_email", "rep_email", "activity_type",
        "direction", "is_automated", "occurred_at",
    ]  # fmt: skip
    assert sum(t.num_rows for t in tables) == s.landing["engagement_rows"] > 0
    directions = set().union(*(set(t.column("direction").to_pylist()) for t in tables))
    assert directions == {"inbound", "outbound"}


# ---------------------------------------------------------------------------- distributions


@pytest.mark.slow
def test_distributions_on_a_20k_world(big) -> None:
    db, s = big
    n = 20_000
    ind = dict(_q(db, "SELECT Industry, COUNT(*) FROM Account GROUP BY Industry"))
    assert max(ind.values()) / n == pytest.approx(0.16, abs=0.02)  # Software leads
    assert max(ind.values()) > 5 * min(ind.values())  # skewed, not uniform
    us = _one(db, "SELECT COUNT(*) FROM Account WHERE BillingCountry = 'United States'") / n
    assert us == pytest.approx(0.45, abs=0.03)

    emp_rev = _q(
        db,
        "SELECT NumberOfEmployees, AnnualRevenue FROM Account WHERE NumberOfEmployees BETWEEN 1 "
        "AND 9999999 AND AnnualRevenue > 0",
    )
    le = sorted(math.log(e) for e, _ in emp_rev)
    assert math.exp(le[len(le) // 2]) == pytest.approx(50, rel=0.2)
    mean = sum(le) / len(le)
    sd = math.sqrt(sum((x - mean) ** 2 for x in le) / len(le))
    assert sd == pytest.approx(1.8, abs=0.15)
    lr = [math.log(r) for _, r in emp_rev]
    lx = [math.log(e) for e, _ in emp_rev]
    mr, mx = sum(lr) / len(lr), sum(lx) / len(lx)
    cov = sum((a - mx) * (b - mr) for a, b in zip(lx, lr, strict=True))
    corr = cov / math.sqrt(sum((a - mx) ** 2 for a in lx) * sum((b - mr) ** 2 for b in lr))
    assert corr > 0.8

    fam = s.counts["family_accounts"] / n
    assert fam == pytest.approx(RATES["family_share"], abs=0.02)
    children = _q(
        db, "SELECT ParentId, COUNT(*) FROM Account WHERE ParentId IN (SELECT Id FROM Account) "
        "GROUP BY ParentId"
    )  # fmt: skip
    assert max(c for _, c in children) <= 20
    depth = _one(
        db,
        "WITH RECURSIVE up(id, d) AS (SELECT Id, 0 FROM Account WHERE ParentId IS NOT NULL "
        "UNION ALL SELECT a.ParentId, up.d + 1 FROM up JOIN Account a ON a.Id = up.id "
        "WHERE a.ParentId IS NOT NULL AND up.d < 10) SELECT MAX(d) FROM up",
    )
    assert depth >= 2  # multi-level families exist (cycles reach the cap, chains stay <= 3)
    assert _one(db, "SELECT COUNT(*) FROM Account WHERE Type = 'Customer'") / n == pytest.approx(
        RATES["customer"], abs=0.015
    )

    activities = s.counts["Task"] + s.counts["Event"]
    assert activities / n == pytest.approx(RATES["activities_per_account_year"], rel=0.15)
    for col, val in (
        ("Source__c", "Sequence"),
        ("Direction__c", "Inbound"),
        ("Source__c", "Marketing"),
    ):
        assert _one(db, f"SELECT COUNT(*) FROM Task WHERE {col} = ?", val) > 0

    # Hoarders own ~300 accounts but touch ~50 of them (manual, last 30 days).
    since = (AS_OF - timedelta(days=30)).isoformat()
    books = _q(
        db,
        "SELECT u.Id, u.Book_Role__c, COUNT(*) FROM Account a JOIN User u ON u.Id = a.OwnerId "
        "WHERE u.Book_Role__c IN ('SDR','BDR') AND u.IsActive = 1 GROUP BY u.Id",
    )
    touched = dict(
        _q(
            db,
            "SELECT t.OwnerId, COUNT(DISTINCT t.AccountId) FROM Task t JOIN Account a "
            "ON a.Id = t.AccountId AND a.OwnerId = t.OwnerId WHERE t.Source__c = 'Manual' "
            "AND t.ActivityDate >= ? GROUP BY t.OwnerId",
            since,
        )
    )
    big_books = [(uid, c) for uid, _, c in books if c >= 250]
    assert len(big_books) == s.reps_by_archetype["hoarder"] >= 1
    for uid, c in big_books:
        assert c <= 360 and touched.get(uid, 0) <= 90
    normal = [c for _, role, c in books if c < 250 and role == "SDR"]
    assert normal and max(normal) <= 130

    leads = s.leads_by_category
    total = sum(leads.values())
    for k, p in LEAD_MIX.items():
        assert leads[k] / total == pytest.approx(p, abs=0.03), k
    types = {r[0] for r in _q(db, "SELECT DISTINCT Signal_Type__c FROM Signal__c")}
    assert types == set(SIGNAL_TYPES)
    assert (
        s.hoarded_opportunities
        == _one(
            db,
            "SELECT COUNT(*) FROM Opportunity WHERE IsClosed = 0 AND Close_Date_Push_Count__c >= 3",
        )
        > 0
    )
    pool_share = _one(
        db, "SELECT COUNT(*) FROM Account a JOIN User u ON u.Id = a.OwnerId WHERE u.Book_Role__c = 'Pool'"
    ) / n  # fmt: skip
    assert 0.5 < pool_share < 0.85
    assert {k: v for k, v in _dangling(db).items() if v} == {
        k: v
        for k, v in {
            ("Account", "ParentId"): s.dirty["parent_missing_ref"],
            ("Contact", "AccountId"): s.dirty["contacts_missing_account"],
            ("Task", "AccountId"): s.dirty["task_missing_account"],
            ("Task", "WhatId"): s.dirty["task_missing_account"],
            ("Event", "AccountId"): s.dirty["event_missing_account"],
            ("Event", "WhatId"): s.dirty["event_missing_account"],
        }.items()
        if v
    }
