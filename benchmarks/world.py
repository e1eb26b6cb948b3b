"""Benchmark worlds: generated once per scale, cached outside git, copied into a workspace.

Why a copy: every run writes to the CRM (write-back, the daily changes), so the cached world
stays pristine and each run starts from the same bytes.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from local_crm.db import CrmStore

log = logging.getLogger(__name__)

ENV_CACHE = "BOOKS_BENCH_CACHE"
DEFAULT_CACHE = Path("/work/bench_cache")
AS_OF = date(2025, 6, 2)  # the demo's as-of date: a Monday, so weekly cadences line up
SEED = 42
MONTHS = 12
CHANGED_ACCOUNT_SHARE = 0.01  # the daily cycle: 1% of accounts changed


@dataclass(frozen=True)
class Scale:
    """One benchmark size; activities follow from the generator's ~20 per account-year."""

    name: str
    accounts: int
    reps: int
    activities: int


SCALES = {
    "S": Scale("S", 20_000, 40, 400_000),
    "M": Scale("M", 100_000, 200, 2_000_000),
    "L": Scale("L", 1_000_000, 1_000, 20_000_000),
    "XL": Scale("XL", 10_000_000, 5_000, 100_000_000),
}


def scale_with(name: str, accounts: int | None = None) -> Scale:
    """The named scale, or a shrunk copy with `accounts` (smoke tests); reps keep the ratio."""
    base = SCALES[name]
    if accounts is None or accounts == base.accounts:
        return base
    reps = max(2, round(base.reps * accounts / base.accounts))
    return Scale(base.name, accounts, reps, base.activities * accounts // base.accounts)


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or DEFAULT_CACHE).expanduser().resolve()


@dataclass(frozen=True)
class CachedWorld:
    crm_db: Path
    landing: Path
    generated: bool
    seconds: float  # generation time (0 when cached)


def cached_world(scale: Scale, policy_path: Path) -> CachedWorld:
    """Generate the world for `scale` unless the cache holds it; generation is atomic."""
    from local_crm.generator import generate_world

    key = f"{scale.name}-{scale.accounts}a-{scale.reps}r-s{SEED}-m{MONTHS}-{AS_OF}"
    home = cache_dir() / "worlds" / key
    if (home / "crm.sqlite").exists():
        return CachedWorld(home / "crm.sqlite", home / "landing", False, 0.0)
    tmp = home.with_name(key + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "landing").mkdir(parents=True)
    started = time.perf_counter()
    generate_world(
        tmp / "crm.sqlite",
        accounts=scale.accounts,
        reps=scale.reps,
        seed=SEED,
        months=MONTHS,
        as_of=AS_OF,
        landing_dir=tmp / "landing",
        policy_path=policy_path,
    )
    seconds = time.perf_counter() - started
    tmp.rename(home)
    return CachedWorld(home / "crm.sqlite", home / "landing", True, seconds)


@dataclass(frozen=True)
class Workspace:
    """One isolated set of product paths: CRM, landing files, warehouse, Dagster home."""

    root: Path

    @property
    def crm_db(self) -> Path:
        return self.root / "crm.sqlite"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "wh" / "warehouse.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def dbt_dir(self) -> Path:
        return self.root / "dbt"


def new_workspace(root: Path, world: CachedWorld) -> Workspace:
    """A fresh workspace: a copy of the cached CRM, the landing files, an empty warehouse."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    ws = Workspace(root)
    shutil.copy2(world.crm_db, ws.crm_db)
    shutil.copytree(world.landing, ws.landing)
    ws.warehouse.parent.mkdir(parents=True)
    return ws


def snapshot(ws: Workspace, root: Path) -> Workspace:
    """A copy of the whole workspace (CRM, warehouse and dlt state), for the Dagster run."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(ws.root, root, ignore=shutil.ignore_patterns("dbt", "dagster", "limit"))
    return Workspace(root)


def apply_daily_changes(crm_db: Path, *, seed: int = SEED) -> dict[str, int]:
    """One day passes in the CRM: clock +1 day, 1% of accounts edited, a day of activities.

    Goes through the CRM's API-style writes (`CrmStore.update` / `insert`), so SystemModstamp
    and history move exactly as they would for edits made by people.
    """
    rng = random.Random(seed)
    store = CrmStore(crm_db)
    try:
        store.clock.advance(timedelta(days=1))
        today = store.clock.today()
        with store.connection() as con:
            accounts = con.execute(
                'SELECT "Id", "OwnerId", "NumberOfEmployees" FROM "Account" '
                'WHERE NOT "IsDeleted" ORDER BY "Id"'
            ).fetchall()
            # Activities are logged by people who can still log in: owners that are active.
            workable = con.execute(
                'SELECT a."Id", a."OwnerId", NULL FROM "Account" a JOIN "User" u '
                'ON u."Id" = a."OwnerId" WHERE NOT a."IsDeleted" AND u."IsActive" ORDER BY a."Id"'
            ).fetchall()
            tasks = con.execute('SELECT count(*) FROM "Task"').fetchone()[0]
            events = con.execute('SELECT count(*) FROM "Event"').fetchone()[0]
        changed = rng.sample(accounts, max(1, round(len(accounts) * CHANGED_ACCOUNT_SHARE)))
        updates = [
            {"Id": acc_id, "NumberOfEmployees": (employees or 0) + 1 + rng.randrange(50)}
            for acc_id, _, employees in changed
        ]
        for lo in range(0, len(updates), 2_000):
            store.update("Account", updates[lo : lo + 2_000])
        per_day = max(1, round((tasks + events) / (MONTHS * 365.25 / 12)))
        touched = [rng.choice(workable) for _ in range(per_day)]
        yesterday = (today - timedelta(days=1)).isoformat()
        records = [
            {
                "WhatId": acc_id,
                "OwnerId": owner_id,
                "Subject": "Call",
                "Type": rng.choice(("Call", "Email", "LinkedIn")),
                "ActivityDate": yesterday,
                "Status": "Completed",
                "Direction__c": "Outbound",
                "Is_Automated__c": False,
                "Source__c": "Manual",
            }
            for acc_id, owner_id, _ in touched
        ]
        for lo in range(0, len(records), 5_000):
            store.insert("Task", records[lo : lo + 5_000])
    finally:
        store.close()
    return {"accounts_changed": len(updates), "activities_added": len(records)}


SIGNAL_RUN_SIGNALS = 50
SIGNAL_RUN_LEADS = 50


def apply_signal_changes(
    crm_db: Path,
    *,
    signals: int = SIGNAL_RUN_SIGNALS,
    leads: int = SIGNAL_RUN_LEADS,
    seed: int = SEED,
) -> dict[str, Any]:
    """What a hot-signal sensor wakes up to after a daily run: `signals` new intent surges on
    ready pool accounts (dated today) and `leads` inbound leads from the websites of the first
    of them, written through the CRM's API-style inserts (SystemModstamp moves as it would).
    An intent surge alone is in market, not hot (books.yml `timing`); with an inbound lead the
    account is hot. Returns the new Signal__c ids (the sensor's run is about them)."""
    rng = random.Random(seed + 1)
    store = CrmStore(crm_db)
    try:
        today = store.clock.today().isoformat()
        with store.connection() as con:
            pool = con.execute(
                'SELECT "Id", "Name", "Website" FROM "Account" WHERE NOT "IsDeleted" '
                'AND "Book_Status__c" = \'ready\' AND "Website" IS NOT NULL ORDER BY "Id"'
            ).fetchall()
            lead_owner = con.execute(
                'SELECT "OwnerId" FROM "Lead" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1'
            ).fetchone()[0]
            admin = con.execute('SELECT "OwnerId" FROM "Signal__c" LIMIT 1').fetchone()[0]
        hot = rng.sample(pool, min(signals, len(pool)))
        signal_ids = store.insert("Signal__c", [
            {"OwnerId": admin, "Account__c": acc_id, "Signal_Type__c": "intent_surge",
             "Signal_Date__c": today, "Score__c": 99.0, "Topic__c": "sales engagement"}
            for acc_id, _, _ in hot
        ])  # fmt: skip
        inbound = hot[:leads]
        store.insert("Lead", [
            {"OwnerId": lead_owner, "FirstName": "Inbound", "LastName": f"Lead {n}",
             "Company": name,
             "Email": f"inbound{n}@{str(site).split('//')[-1].strip('/').removeprefix('www.')}",
             "Website": site, "LeadSource": "Web", "Status": "Open", "IsConverted": False}
            for n, (_, name, site) in enumerate(inbound)
        ])  # fmt: skip
    finally:
        store.close()
    return {"signal_ids": sorted(signal_ids), "leads_added": len(inbound)}
