"""A rep leaves and a manager assigns an account by hand, between two weekly `books_cycle`
runs on a small generated world (the local CRM, ingestion, dbt and the write-back, end to end).

After the second run the leaving rep owns nothing that could go back to the pool (only accounts
with an open opportunity, or customers), and the hand-assigned account, untouched for a week, is
still with the rep the manager chose, recorded as that manager's manual_assign.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from local_crm.db import CrmStore
from local_crm.generator import generate_world
from orchestration.runner import run_cycle
from policy import BooksPaths, resolve_paths
from tests.e2e.conftest import write_test_policy
from tests.homes import home_env

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 2)


def _cycle(paths: BooksPaths, as_of: date) -> str:
    # The override lets the departed rep's whole book through the write-back's
    # share-of-one-book guard, which holds any plan that empties more than half of a book.
    summary = run_cycle(
        as_of,
        dry_run=False,
        override_guard=True,
        paths=paths,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert summary.success, summary.render()
    return summary.run_id


def _one(con: sqlite3.Connection, sql: str, params: tuple = ()) -> str:
    row = con.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def test_departed_rep_and_hand_assignment(tmp_path: Path) -> None:
    policy = write_test_policy(resolve_paths({}).policy, tmp_path / "books.yml")
    paths = resolve_paths({**home_env(tmp_path), "BOOKS_POLICY": str(policy)})
    paths.landing.mkdir(parents=True)
    generate_world(
        paths.crm_db, accounts=300, reps=6, seed=5, as_of=AS_OF, landing_dir=paths.landing,
        policy_path=policy,
    )  # fmt: skip
    _cycle(paths, AS_OF)

    store = CrmStore(paths.crm_db)
    with store.connection() as con:
        reps = [
            r[0]
            for r in con.execute(
                'SELECT u."Id" FROM "User" u WHERE u."Book_Role__c" IN (\'SDR\', \'BDR\') '
                'AND u."IsActive" = 1 AND EXISTS (SELECT 1 FROM "Account" a '
                'WHERE a."OwnerId" = u."Id" AND a."IsDeleted" = 0) ORDER BY u."Id"'
            ).fetchall()
        ]
        leaving, receiving = reps[0], reps[1]
        manager = _one(con, 'SELECT "Id" FROM "User" WHERE "Book_Role__c" = \'Manager\' LIMIT 1')
        hand_account = _one(
            con,
            'SELECT a."Id" FROM "Account" a JOIN "User" u ON u."Id" = a."OwnerId" '
            'WHERE u."Book_Role__c" = \'Pool\' AND a."IsDeleted" = 0 AND a."Type" = \'Prospect\' '
            'ORDER BY a."Id" LIMIT 1',
        )
    assert store.update("User", [{"Id": leaving, "IsActive": False}])[0].success
    moved = store.update("Account", [{"Id": hand_account, "OwnerId": receiving}], actor_id=manager)
    assert moved[0].success
    store.clock.advance(timedelta(days=7))
    store.close()

    run_id = _cycle(paths, AS_OF + timedelta(days=7))

    with sqlite3.connect(f"file:{paths.crm_db}?mode=ro", uri=True) as con:
        kept = con.execute(
            'SELECT a."Id" FROM "Account" a WHERE a."OwnerId" = ? AND a."IsDeleted" = 0 '
            "AND coalesce(a.\"Type\", '') <> 'Customer' AND NOT EXISTS (SELECT 1 FROM "
            '"Opportunity" o WHERE o."AccountId" = a."Id" AND o."IsClosed" = 0 '
            'AND o."IsDeleted" = 0)',
            (leaving,),
        ).fetchall()
        hand_owner = _one(con, 'SELECT "OwnerId" FROM "Account" WHERE "Id" = ?', (hand_account,))
    assert kept == [], f"the departed rep still owns releasable accounts: {kept[:5]}"
    assert hand_owner == receiving

    with duckdb.connect(str(paths.warehouse), read_only=True) as wh:
        rows = wh.execute(
            "select decision_kind, changed_by_id from decisions.book_decisions "
            "where run_id = ? and account_id = ?",
            [run_id, hand_account],
        ).fetchall()
        released = wh.execute(
            "select count(*) from decisions.book_decisions where run_id = ? "
            "and decision_kind = 'release' and from_owner_id = ? and reason = 'owner_inactive'",
            [run_id, leaving],
        ).fetchone()[0]
    assert ("manual_assign", manager) in rows, rows
    assert all(kind != "retrieve" for kind, _ in rows), rows
    assert released > 0

    # Five days later, still inside the grace period: the change stands, recorded only once.
    store = CrmStore(paths.crm_db)
    store.clock.advance(timedelta(days=5))
    store.close()
    _cycle(paths, AS_OF + timedelta(days=12))
    with sqlite3.connect(f"file:{paths.crm_db}?mode=ro", uri=True) as con:
        hand_owner = _one(con, 'SELECT "OwnerId" FROM "Account" WHERE "Id" = ?', (hand_account,))
    assert hand_owner == receiving
    with duckdb.connect(str(paths.warehouse), read_only=True) as wh:
        records = wh.execute(
            "select count(*) from decisions.book_decisions where account_id = ? "
            "and decision_kind = 'manual_assign'",
            [hand_account],
        ).fetchone()[0]
    assert records == 1, f"the hand assignment was recorded {records} times"
