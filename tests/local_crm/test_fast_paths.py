"""The fast paths behave like the slow ones: vectorised ids, bulk query results formatted by
SQLite from a read snapshot, and the generator's bulk session."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from local_crm.db import CrmStore, id_checksum, make_id, make_ids
from local_crm.server import LocalCrmServer

from .conftest import RawApi, World

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _reference_id(prefix: str, number: int) -> str:
    digits = ""
    for _ in range(9):
        number, r = divmod(number, 62)
        digits = _BASE62[r] + digits
    id15 = prefix + "Dy0" + digits
    return id15 + id_checksum(id15)


@pytest.mark.parametrize("start", [0, 1, 61, 3_843, 916_132_831, 62**9 - 300])
@pytest.mark.parametrize("prefix", ["001", "00T", "a0X"])
def test_make_ids_match_the_per_id_algorithm(prefix: str, start: int) -> None:
    assert make_ids(prefix, start, 300) == [_reference_id(prefix, start + i) for i in range(300)]
    assert make_id(prefix, start) == _reference_id(prefix, start)


def test_make_ids_refuse_an_exhausted_sequence() -> None:
    with pytest.raises(OverflowError):
        make_ids("001", 62**9 - 1, 2)


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _results(raw: RawApi, job_id: str, **params: object):
    return raw.call("GET", f"jobs/query/{job_id}/results", params=params)


def test_bulk_query_pages_come_from_the_job_snapshot_and_retries_repeat(
    server: LocalCrmServer, raw: RawApi, world: World
) -> None:
    soql = "SELECT Id, Name, NumberOfEmployees FROM Account ORDER BY Name"
    job = raw.call("POST", "jobs/query", json={"operation": "query", "query": soql}).json()
    # A change committed after the job completed is not in its results (snapshot).
    server.store.update("Account", [{"Id": world.accounts[0], "Name": "Zz renamed"}])
    first = _results(raw, job["id"], maxRecords=25)
    again = _results(raw, job["id"], maxRecords=25)  # a retried first page
    assert first.text == again.text
    second = _results(raw, job["id"], maxRecords=25, locator=first.headers["Sforce-Locator"])
    rows = _csv(first.text) + _csv(second.text)
    assert [r["Id"] for r in rows] == world.accounts
    assert rows[0]["Name"] == "Account 00"
    assert second.headers["Sforce-Locator"] == "null"
    # Once every page was served the job re-reads live data on request.
    late = _csv(_results(raw, job["id"], maxRecords=1).text)
    assert late[0]["Id"] == world.accounts[1]


def test_bulk_query_csv_values(server: LocalCrmServer, raw: RawApi, world: World) -> None:
    acc = world.accounts[3]
    with server.store.connection() as con, con:
        con.execute(
            'UPDATE "Account" SET "AnnualRevenue" = ?, "Website" = ?, "Name" = ? WHERE "Id" = ?',
            (0.1 + 0.2, "N/A", 'He said "hi", then\nleft', acc),
        )
    soql = (
        "SELECT Id, Name, Website, AnnualRevenue, NumberOfEmployees, IsDeleted, "
        f"External_Fit_Score__c FROM Account WHERE Id = '{acc}'"
    )
    job = raw.call("POST", "jobs/query", json={"operation": "query", "query": soql}).json()
    text = _results(raw, job["id"]).text
    (row,) = _csv(text)
    assert float(row["AnnualRevenue"]) == 0.1 + 0.2  # exact, not SQLite's 15 digits
    assert row["Name"] == 'He said "hi", then\nleft'
    assert (row["Website"], row["NumberOfEmployees"], row["IsDeleted"]) == ("N/A", "3", "false")
    assert row["External_Fit_Score__c"] == ""
    assert text.splitlines()[0].startswith('"Id","Name","Website"')


def test_bulk_session_builds_indexes_and_returns_to_wal(tmp_path: Path) -> None:
    store = CrmStore(tmp_path / "crm.sqlite")
    with store.bulk_session():
        ids = store.new_ids("Account", 3)
        n = store.bulk_load_columns("Account", {"Id": ids, "Name": ["a", "b", "c"]})
        with pytest.raises(ValueError, match="unequal length"):
            store.bulk_load_columns("Account", {"Id": ids, "Name": ["a"]})
    assert n == 3 and store.count("Account") == 3
    con = sqlite3.connect(tmp_path / "crm.sqlite")
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        con.close()
    assert {"ix_Account_SystemModstamp", "ix_Task_AccountId"} <= indexes
    assert store.get("Account", ids[1])["Name"] == "b"
