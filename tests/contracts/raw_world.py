"""Good raw CRM tables built directly in DuckDB, and a known set of malformed rows.

Why not the generator: its world is deliberately dirty (orphan contacts, implausible sizes),
so "0 good rows quarantined" needs rows that are good by construction; the columns and types
come from `ingest.fields` (the raw-layer contract), so the tables look exactly like dlt's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ingest.fields import object_specs
from local_crm.db import make_id
from local_crm.schema import OBJECTS

_POLARS = {
    "VARCHAR": pl.Utf8,
    "BOOLEAN": pl.Boolean,
    "BIGINT": pl.Int64,
    "DOUBLE": pl.Float64,
    "DATE": pl.Date,
    "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
}


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    from contracts.rules import frozen_columns

    con.execute("create schema if not exists raw_salesforce")
    for name, spec in object_specs().items():
        cols = [f"{c} {t}" for c, t in frozen_columns()[name].items()]
        cols += ["_dlt_load_id varchar not null", "_dlt_id varchar not null"]
        con.execute(f"create table raw_salesforce.{spec.table} ({', '.join(cols)})")


def insert_rows(
    con: duckdb.DuckDBPyConnection, obj: str, rows: list[dict], load_id: str = "1700000000.1"
) -> None:
    """Insert dict rows (Salesforce field names) into the object's raw table, as one load."""
    from contracts.rules import frozen_columns
    from ingest.fields import snake

    spec = object_specs()[obj]
    types = frozen_columns()[obj]
    data = {c: [r.get(f.name) for r in rows] for f in spec.fields for c in [snake(f.name)]}
    frame = pl.DataFrame(data, schema={c: _POLARS[t] for c, t in types.items()}, strict=False)
    frame = frame.with_columns(
        pl.lit(load_id).alias("_dlt_load_id"),
        pl.Series("_dlt_id", [f"{obj}-{r['Id']}-{i}-{id(rows)}" for i, r in enumerate(rows)]),
    )
    con.register("_rows", frame.to_arrow())
    con.execute(f"insert into raw_salesforce.{spec.table} by name select * from _rows")
    con.unregister("_rows")


@dataclass
class GoodWorld:
    users: list[str]
    accounts: list[str]
    counts: dict[str, int]


def _system(obj: str, n: int, owner: str | None) -> dict:
    row = {
        "Id": make_id(OBJECTS[obj].key_prefix, n),
        "IsDeleted": False,
        "CreatedDate": "2024-01-01T00:00:00+00:00",
        "LastModifiedDate": "2024-01-02T00:00:00+00:00",
        "SystemModstamp": "2024-01-02T00:00:00+00:00",
    }
    if owner:
        row["OwnerId"] = owner
    return row


def build_good_world(path: Path, n_accounts: int = 6000, n_contacts: int = 4000) -> GoodWorld:
    """10 users, `n_accounts` accounts and `n_contacts` contacts, all valid by contract."""
    ts = datetime(2024, 1, 2, tzinfo=UTC)
    rng = random.Random(7)
    users = [make_id("005", i + 1) for i in range(10)]
    with duckdb.connect(str(path)) as con:
        create_raw_tables(con)
        user_rows = [
            {
                **_system("User", i + 1, None),
                "Username": f"rep{i}@books.local",
                "Name": f"Rep {i}",
                "Email": f"rep{i}@books.local",
                "IsActive": True,
                "Book_Role__c": "SDR",
            }
            for i in range(10)
        ]
        accounts = []
        account_rows = []
        for i in range(n_accounts):
            row = {
                **_system("Account", i + 1, rng.choice(users)),
                "Name": f"Acme {i}",
                "Industry": "Software",
                "NumberOfEmployees": rng.randint(0, 5000),
                "AnnualRevenue": rng.random() * 1e7,
                "Type": rng.choice(["Prospect", "Customer"]),
                "Book_Status__c": rng.choice(["ready", "working", None]),
            }
            accounts.append(row["Id"])
            account_rows.append(row)
        contact_rows = [
            {
                **_system("Contact", i + 1, rng.choice(users)),
                "AccountId": rng.choice(accounts),
                "Email": f"c{i}@acme.com",
            }
            for i in range(n_contacts)
        ]
        for rows in (user_rows, account_rows, contact_rows):
            for row in rows:
                for key in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
                    row[key] = ts
        insert_rows(con, "User", user_rows)
        insert_rows(con, "Account", account_rows)
        insert_rows(con, "Contact", contact_rows)
    return GoodWorld(
        users, accounts, {"User": len(user_rows), "Account": n_accounts, "Contact": n_contacts}
    )
