"""Only enrolled accounts are written: accounts in the pool or in an active book rep's book.

An account owned by an account executive (a non-book role) or by a rep who left is not managed
by dynamic-books, so even its first run (no Book_Status__c in the CRM yet) writes nothing to it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from tests.decisions.compiled_sql import CompiledRunner
from tests.decisions.decision_worlds import Rep, World, account_row, run_world

AS_OF = dt.date(2025, 3, 3)


def test_first_run_writes_only_enrolled_accounts(engine: CompiledRunner) -> None:
    world = World(
        as_of_date=AS_OF, reps=[Rep("005R00", "smb", True, 5, 0, 5)], pool_users=["005P00"]
    )
    owners = {
        "001POOL": ("005P00", "pool", "ready"),
        "001BOOK": ("005R00", "rep", "working"),
        "001AE": ("005AE", "non_book", "excluded"),
        "001GONE": ("005RX", "inactive", "excluded"),
    }
    for account_id, (owner_id, owner_kind, state) in owners.items():
        world.accounts.append(
            account_row(
                account_id,
                family_id=account_id,
                segment_key="smb",
                owner_id=owner_id,
                owner_kind=owner_kind,
                state=state,
                last_touch_by_owner_date=AS_OF - dt.timedelta(days=2),
                last_meaningful_touch_date=AS_OF - dt.timedelta(days=2),
            )
        )
    # The CRM has never been written by dynamic-books: no book status on any account.
    crm = world.frames()["stg_salesforce__accounts"].with_columns(
        pl.lit(None, pl.String).alias("book_status")
    )
    result = run_world(engine, world, stubs={"stg_salesforce__accounts": crm})

    written = {row["account_id"] for row in result["sync"]}
    assert written == {"001POOL", "001BOOK"}
