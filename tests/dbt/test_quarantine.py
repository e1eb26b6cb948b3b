"""Rows the data contracts quarantine are excluded from staging, and counted per object."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from contracts import run_contracts
from tests.dbt.conftest import BuiltWorld
from tests.dbt.dbt_helpers import failures, run_dbt

pytestmark = pytest.mark.slow

BAD_OWNER = "005ZZZZZZZZZZZZAAA"  # well formed, but no such User: a dangling reference


@pytest.fixture(scope="module")
def quarantined_world(built_world: BuiltWorld, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the world with one account given a dangling owner and one task without an Id,
    checked by the real contracts, then staging rebuilt."""
    work = tmp_path_factory.mktemp("quarantine")
    wh = work / built_world.warehouse.name  # same file name: views name their catalog
    shutil.copy(built_world.warehouse, wh)
    with duckdb.connect(str(wh)) as con:
        victim = con.execute(
            "select min(id) from raw_salesforce.account where not is_deleted"
        ).fetchone()[0]
        con.execute(
            "update raw_salesforce.account set owner_id = ? where id = ?", [BAD_OWNER, victim]
        )
        con.execute(
            "update raw_salesforce.task set id = null "
            "where id = (select min(id) from raw_salesforce.task where not is_deleted)"
        )
    report = run_contracts(wh, "quarantine-test", detected_at=datetime(2025, 3, 31, tzinfo=UTC))
    result = run_dbt(
        ["build", "--select", "path:models/staging", "--indirect-selection", "cautious"],
        wh,
        built_world.dbt_vars,
        work,
    )
    return wh, victim, report, failures(result)


def _rows(wh: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(wh)) as con:
        return con.execute(sql).fetchall()


def test_quarantined_account_is_excluded_from_staging(quarantined_world) -> None:
    wh, victim, _report, build_failures = quarantined_world
    assert build_failures == []
    assert ("Account", victim) in _rows(wh, "select object, record_id from ops.quarantined_ids")
    staged = _rows(
        wh, f"select count(*) from staging.stg_salesforce__accounts where account_id = '{victim}'"
    )
    assert staged == [(0,)]


def test_quarantine_counts_match_an_independent_count(quarantined_world) -> None:
    wh, _victim, _report, _failures = quarantined_world
    counts = {
        row[0]: row[1:]
        for row in _rows(
            wh,
            "select object_name, quarantined_records, null_id_rows, excluded_rows "
            "from staging.stg_salesforce__quarantine_counts",
        )
    }
    assert len(counts) == 9 and all(v[0] + v[1] == v[2] for v in counts.values())
    independent = dict(
        _rows(
            wh,
            """
            select 'Account', count(distinct account.id)
            from raw_salesforce.account as account
            where not account.is_deleted
              and account.id in (select record_id from ops.quarantined_ids where object = 'Account')
            """,
        )
    )
    assert counts["Account"][0] == independent["Account"] >= 1
    assert counts["Task"][1] == 1
    live_accounts = _rows(
        wh,
        """
        select count(distinct id) from raw_salesforce.account as account
        where id is not null and not exists (
            select 1 from raw_salesforce.account as later
            where later.id = account.id and later.is_deleted)
        """,
    )[0][0]
    staged = _rows(wh, "select count(*) from staging.stg_salesforce__accounts")[0][0]
    assert staged + counts["Account"][0] == live_accounts
