"""A small generated twin and a reference for the lab's tests that need no cycle."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from local_crm.db import CrmStore
from simulation.arms import Reference
from simulation.twin import generate_twin

START = date(2025, 6, 2)  # a Monday


@pytest.fixture(scope="session")
def small_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "twin.sqlite"
    generate_twin(path, accounts=200, reps=6, seed=5, months=3, as_of=START, landing_dir=None)
    return path


@pytest.fixture(scope="session")
def warehouse_twin(small_twin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world as `books twin --from-warehouse` copies it: the CRM extracted into a
    warehouse (the raw tables every `books run` and the demo fill), then copied into a twin."""
    from ingest.salesforce import run_salesforce_ingest
    from simulation.crm_api import twin_api
    from simulation.twin import copy_twin, twin_from_warehouse

    home = tmp_path_factory.mktemp("lab-warehouse")
    crm = copy_twin(small_twin, home / "crm.sqlite")
    with twin_api(crm) as api:
        run_salesforce_ingest(api.conn, home / "warehouse.duckdb")
    return twin_from_warehouse(home / "warehouse.duckdb", home / "twin.sqlite").path


@pytest.fixture(scope="session")
def hand_reference(small_twin: Path) -> Reference:
    """Tiers and segments without a cycle: tier by External_Fit_Score__c quartile, segment =
    the one segment of the rep or pool owning the account (what the static arm splits by)."""
    con = CrmStore(small_twin).connect()
    try:
        users = dict(con.execute('select "Id", "Book_Segments__c" from "User"').fetchall())
        rows = con.execute(
            'select "Id", "OwnerId", coalesce("External_Fit_Score__c", 0) from "Account" '
            "where \"Type\" = 'Prospect' order by 3 desc, 1"
        ).fetchall()
    finally:
        con.close()
    segments = sorted({s for s in users.values() if s})
    tiers, seg, fit = {}, {}, {}
    for i, (account, owner, score) in enumerate(rows):
        tiers[account] = "ABCD"[min(3, 4 * i // len(rows))]
        seg[account] = users.get(owner) or segments[i % len(segments)]
        fit[account] = float(score)
    return Reference(tiers=tiers, segments=seg, fit=fit)
