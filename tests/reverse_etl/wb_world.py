"""A small world for write-back tests: local CRM (in-process server), reps, pool, accounts,
leads, and a warehouse holding the raw tables the guards read and the sync models the planner
reads."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from crm.retry import RetryPolicy
from crm.salesforce import CrmSettings, SalesforceConnection, connect
from local_crm.db import CrmStore
from local_crm.schema import WRITABLE_ACCOUNT_FIELDS
from local_crm.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    LocalCrmServer,
    start_in_process,
)
from reverse_etl.plan import snake
from tests.fakes import FakeClock

POOL_USERNAME = "pool-1@books.local"


def fixed_clock() -> dt.datetime:
    return dt.datetime(2025, 3, 3, 6, 0, tzinfo=dt.UTC)


@dataclass
class World:
    server: LocalCrmServer
    store: CrmStore
    warehouse: Path
    reps: list[str]
    pool: str
    accounts: list[str]
    leads: list[str] = field(default_factory=list)
    time: FakeClock = field(default_factory=FakeClock)

    def connect(self) -> SalesforceConnection:
        settings = CrmSettings(
            kind="local",
            base_url=self.server.url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        )
        return connect(
            settings,
            sleep=self.time.sleep,
            clock=self.time,
            policy=RetryPolicy(max_attempts=8, base_delay=0.1, max_delay=2.0),
        )

    def crm_values(self, account_id: str) -> dict[str, str | None]:
        rec = self.store.get("Account", account_id) or {}
        return {f: (None if rec.get(f) is None else str(rec[f])) for f in WRITABLE_ACCOUNT_FIELDS}

    def lead_owner(self, lead_id: str) -> str | None:
        rec = self.store.get("Lead", lead_id) or {}
        return None if rec.get("OwnerId") is None else str(rec["OwnerId"])

    def sync_changes(
        self,
        run_id: str,
        wanted: Mapping[str, Mapping[str, str | None]],
        lead_owners: Mapping[str, str] | None = None,
    ) -> None:
        """Write raw tables (this run's CRM read) and both sync models for the wanted values
        (`lead_owners`: desired OwnerId per lead, as sync_salesforce__leads holds it)."""
        refresh_raw(self.store, self.warehouse)
        rows = []
        for account_id, after in wanted.items():
            before = self.crm_values(account_id)
            row: dict[str, str | None] = {"account_id": account_id, "run_id": run_id}
            for f in WRITABLE_ACCOUNT_FIELDS:
                row[f"before_{snake(f)}"] = before[f]
                row[snake(f)] = after.get(f, before[f])
            rows.append(row)
        schema = {"account_id": pl.Utf8, "run_id": pl.Utf8}
        for f in WRITABLE_ACCOUNT_FIELDS:
            schema[f"before_{snake(f)}"] = pl.Utf8
            schema[snake(f)] = pl.Utf8
        frame = pl.DataFrame(rows, schema=schema)
        with duckdb.connect(str(self.warehouse)) as con:
            con.execute("create schema if not exists sync")
            con.register("_sync", frame)
            con.execute("create or replace table sync.sync_salesforce__accounts as from _sync")
            con.unregister("_sync")
        leads = pl.DataFrame(
            [
                {"lead_id": lead, "run_id": run_id, "before_owner_id": self.lead_owner(lead),
                 "owner_id": owner}
                for lead, owner in (lead_owners or {}).items()
            ],
            schema={"lead_id": pl.Utf8, "run_id": pl.Utf8, "before_owner_id": pl.Utf8,
                    "owner_id": pl.Utf8},
        )  # fmt: skip
        with duckdb.connect(str(self.warehouse)) as con:
            con.register("_leads", leads)
            con.execute("create or replace table sync.sync_salesforce__leads as from _leads")
            con.unregister("_leads")

    def lead_owner_changes(self, since: dt.datetime) -> dict[str, str]:
        """Leads whose record changed at or after `since`, with their owner now."""
        stamp = since.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        with sqlite3.connect(self.store.path) as con:
            return dict(
                con.execute(
                    'SELECT "Id", "OwnerId" FROM "Lead" WHERE "SystemModstamp" >= ?', (stamp,)
                ).fetchall()
            )

    def owner_history(self, since_seq: int = 0) -> list[tuple[str, str, str]]:
        with sqlite3.connect(self.store.path) as con:
            return con.execute(
                'SELECT "AccountId", "OldValue", "NewValue" FROM "AccountHistory" '
                "WHERE \"Field\" = 'OwnerId' AND rowid > ? ORDER BY rowid",
                (since_seq,),
            ).fetchall()

    def history_seq(self) -> int:
        with sqlite3.connect(self.store.path) as con:
            return con.execute('SELECT COALESCE(MAX(rowid), 0) FROM "AccountHistory"').fetchone()[0]


def refresh_raw(store: CrmStore, warehouse: Path) -> None:
    """The slice of `raw_salesforce` (CONTRACTS.md names) that the guards read."""
    with sqlite3.connect(store.path) as src:
        users = src.execute('SELECT "Id", "Username", "Book_Role__c" FROM "User"').fetchall()
        accounts = src.execute('SELECT "Id", "OwnerId", "IsDeleted" FROM "Account"').fetchall()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists raw_salesforce")
        con.execute(
            "create or replace table raw_salesforce.user "
            "(id varchar, username varchar, book_role_c varchar)"
        )
        con.execute(
            "create or replace table raw_salesforce.account "
            "(id varchar, owner_id varchar, is_deleted boolean)"
        )
        if users:
            con.executemany("insert into raw_salesforce.user values (?, ?, ?)", users)
        if accounts:
            con.executemany(
                "insert into raw_salesforce.account values (?, ?, ?)",
                [(a, o, bool(d)) for a, o, d in accounts],
            )


def build_world(
    tmp: Path, n_accounts: int = 100, n_reps: int = 10, n_leads: int = 20, **server_opts
) -> World:
    db = tmp / "crm.sqlite"
    server = start_in_process(db, **server_opts)
    store = server.store
    store.clock.set(dt.datetime(2025, 3, 3, 5, 0, tzinfo=dt.UTC))
    reps = store.insert(
        "User",
        [
            {"Username": f"rep{i}@books.local", "Name": f"Rep {i}", "IsActive": True,
             "Book_Role__c": "SDR", "Book_Segments__c": "smb"}
            for i in range(n_reps)
        ],
    )  # fmt: skip
    pool = store.insert(
        "User",
        [{"Username": POOL_USERNAME, "Name": "Pool 1", "IsActive": True, "Book_Role__c": "Pool"}],
    )[0]
    accounts = []
    for start in range(0, n_accounts, 500):
        accounts += store.insert(
            "Account",
            [
                {"Name": f"Account {i}", "OwnerId": reps[i % n_reps], "Book_Status__c": "working",
                 "NumberOfEmployees": 50}
                for i in range(start, min(start + 500, n_accounts))
            ],
        )  # fmt: skip
    leads = store.insert(
        "Lead",
        [
            {"LastName": f"Lead {i}", "Company": f"Account {i}", "OwnerId": reps[i % n_reps],
             "Status": "Open", "IsConverted": False}
            for i in range(n_leads)
        ],
    )  # fmt: skip
    return World(server, store, tmp / "warehouse.duckdb", reps, pool, accounts, leads)
