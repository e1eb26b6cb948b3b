"""The store under the API: ids, clock, bulk_load defaults, content hash, soft delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local_crm.db import (
    CrmStore,
    CrmWriteError,
    format_datetime,
    id_checksum,
    make_id,
    parse_datetime,
    to_id18,
)


def test_ids_carry_prefix_and_salesforce_checksum(tmp_path: Path) -> None:
    assert id_checksum("001A0000006Vm9r") == "IAC"  # Salesforce's documented example
    assert to_id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    with pytest.raises(ValueError, match="malformed id"):
        to_id18("001A0000006Vm9rAAA")
    store = CrmStore(tmp_path / "a.sqlite")
    first = store.new_ids("Account", 3)
    assert first == [make_id("001", 1), make_id("001", 2), make_id("001", 3)]
    assert all(len(i) == 18 and to_id18(i[:15]) == i for i in first)
    # The counter is persisted: a second store on the same file continues it.
    assert CrmStore(tmp_path / "a.sqlite").new_ids("Account", 1) == [make_id("001", 4)]


def test_clock_is_persisted_and_stamps_writes(tmp_path: Path) -> None:
    store = CrmStore(tmp_path / "c.sqlite")
    when = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
    store.clock.set(when)
    store.clock.advance(timedelta(days=1))
    assert CrmStore(tmp_path / "c.sqlite").clock.now() == when + timedelta(days=1)
    uid = store.insert("User", [{"Username": "u", "Name": "U"}])[0]
    row = store.get("User", uid)
    assert row is not None
    assert row["CreatedDate"] == row["SystemModstamp"] == "2025-06-02T12:30:00.000+0000"
    assert row["IsActive"] == 1 and row["IsDeleted"] == 0


def test_bulk_load_defaults_system_fields_and_checks_columns(tmp_path: Path) -> None:
    store = CrmStore(tmp_path / "b.sqlite")
    ids = store.new_ids("Account", 2)
    n = store.bulk_load(
        "Account", ["Id", "Name", "OwnerId"], [(ids[0], "A", None), (ids[1], "B", None)]
    )
    assert n == 2 and store.count("Account") == 2
    row = store.get("Account", ids[1])
    assert row is not None and row["CreatedDate"] == format_datetime(store.clock.now())
    assert store.count("AccountHistory") == 0
    with pytest.raises(KeyError, match="Nope"):
        store.bulk_load("Account", ["Id", "Nope"], [])
    with pytest.raises(ValueError, match="row 0 has 1 values for 2 columns"):
        store.bulk_load("Account", ["Id", "Name"], [(ids[0],)])


def test_content_hash_is_stable_and_sensitive(tmp_path: Path) -> None:
    def build(path: Path, name: str) -> str:
        store = CrmStore(path)
        uid = store.insert("User", [{"Username": "u", "Name": "U"}])[0]
        store.insert("Account", [{"Name": name, "OwnerId": uid}])
        return store.content_hash()

    assert build(tmp_path / "x.sqlite", "Acme") == build(tmp_path / "y.sqlite", "Acme")
    assert build(tmp_path / "z.sqlite", "Acme") != build(tmp_path / "w.sqlite", "Acne")


def test_insert_raises_naming_the_record(tmp_path: Path) -> None:
    store = CrmStore(tmp_path / "e.sqlite")
    with pytest.raises(CrmWriteError, match=r"record 1: REQUIRED_FIELD_MISSING"):
        store.insert("User", [{"Username": "a", "Name": "A"}, {"Username": "b"}])
    assert store.count("User") == 0  # all or none


def test_soft_delete(tmp_path: Path) -> None:
    store = CrmStore(tmp_path / "d.sqlite")
    uid = store.insert("User", [{"Username": "u", "Name": "U"}])[0]
    acc = store.insert("Account", [{"Name": "A", "OwnerId": uid}])[0]
    assert [r.success for r in store.delete("Account", [acc])] == [True]
    assert store.delete("Account", [acc])[0].errors[0].status_code == "ENTITY_IS_DELETED"
    assert store.count("Account") == 0 and store.count("Account", include_deleted=True) == 1


def test_datetime_formats_round_trip() -> None:
    dt = parse_datetime("2025-03-04T05:06:07.000+0000")
    assert format_datetime(dt) == "2025-03-04T05:06:07.000+0000"
    assert parse_datetime("2025-03-04T06:06:07+01:00") == dt
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2025, 1, 1))
