"""The twin copied from the warehouse holds the CRM as the warehouse read it, ids unchanged,
and new records in it never take a copied record's id."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ingest.fields import object_specs
from ingest.salesforce import run_salesforce_ingest
from local_crm.db import CrmStore
from local_crm.generator import generate_world
from simulation.crm_api import twin_api
from simulation.twin import TwinError, copy_twin, twin_from_warehouse

AS_OF = date(2025, 6, 2)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small generated CRM with one deleted account, and a warehouse that extracted it."""
    home = tmp_path_factory.mktemp("twin")
    crm = home / "crm.sqlite"
    generate_world(crm, accounts=60, reps=3, seed=11, months=3, as_of=AS_OF, landing_dir=None)
    store = CrmStore(crm)
    doomed = sorted(r[0] for r in store.connect().execute('select "Id" from "Account"'))[5]
    store.delete("Account", [doomed])
    warehouse = home / "warehouse.duckdb"
    with twin_api(crm) as api:
        run_salesforce_ingest(api.conn, warehouse)
    return crm, warehouse


def _rows(db: Path, obj: str) -> dict[str, tuple]:
    fields = object_specs()[obj].field_names
    cols = ", ".join(f'"{f}"' for f in fields)
    con = CrmStore(db).connect()
    try:
        return {r[0]: r for r in con.execute(f'select "Id", {cols} from "{obj}"')}
    finally:
        con.close()


def test_twin_holds_every_extracted_field_of_every_record(source, tmp_path) -> None:
    crm, warehouse = source
    summary = twin_from_warehouse(warehouse, tmp_path / "twin.sqlite")
    for obj in ("User", "Account", "Contact", "Lead", "Opportunity", "Task", "Signal__c"):
        assert _rows(summary.path, obj) == _rows(crm, obj), obj
    assert summary.clock == AS_OF  # the day after the newest change the warehouse read


def test_new_records_in_the_twin_get_new_ids(source, tmp_path) -> None:
    _, warehouse = source
    twin = twin_from_warehouse(warehouse, tmp_path / "twin.sqlite").path
    copied = set(_rows(twin, "Account"))
    with twin_api(twin) as api:
        new = api.create("Account", [{"Name": f"New {i}"} for i in range(3)])
    assert not set(new) & copied
    assert len(_rows(twin, "Account")) == len(copied) + 3


def test_a_twin_never_overwrites_a_file(source, tmp_path) -> None:
    crm, warehouse = source
    target = tmp_path / "taken.sqlite"
    copy_twin(crm, target)
    with pytest.raises(TwinError, match="already exists"):
        twin_from_warehouse(warehouse, target)
    with pytest.raises(TwinError, match="no warehouse"):
        twin_from_warehouse(tmp_path / "missing.duckdb", tmp_path / "t2.sqlite")
