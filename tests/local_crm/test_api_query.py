"""query / queryAll: pagination, incremental SystemModstamp cursors, the SOQL subset, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from simple_salesforce import Salesforce

from local_crm.db import format_datetime
from local_crm.server import LocalCrmServer, iter_all_records

from .conftest import RawApi, World


def test_pagination_over_five_pages_returns_every_row_once(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    before = server.last_request_seq()
    rows = list(iter_all_records(sf, "SELECT Id, Name FROM Account"))
    ids = [r["Id"] for r in rows]
    assert sorted(ids) == sorted(world.accounts)
    assert len(set(ids)) == len(ids) == 40
    pages = [r for r in server.request_log(before) if "/query" in r["path"]]
    assert len(pages) == 6  # 40 rows at page size 7
    assert [p["records"] for p in pages] == [7, 7, 7, 7, 7, 5]


def test_query_all_via_simple_salesforce_and_batch_size_header(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    result = sf.query_all("SELECT Id FROM Account")
    assert result["totalSize"] == 40 and len(result["records"]) == 40
    sf.headers["Sforce-Query-Options"] = "batchSize=200"
    assert sf.query("SELECT Id FROM Account")["done"] is True


def test_pages_are_a_snapshot_of_the_first_call(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    first = sf.query("SELECT Id FROM Account")
    server.store.insert("Account", [{"Name": "Late", "OwnerId": world.reps[0]}])
    rest = list(iter_all_records_from(sf, first))
    assert len(first["records"]) + len(rest) == 40


def iter_all_records_from(sf: Salesforce, result: dict) -> list[dict]:
    out: list[dict] = []
    while not result["done"]:
        result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
        out.extend(result["records"])
    return out


def test_system_modstamp_cursor_returns_exactly_changed_rows(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    clock = server.store.clock
    cursor = format_datetime(clock.now())
    clock.advance(timedelta(minutes=5))
    changed = world.accounts[3:9]
    results = server.store.update(
        "Account", [{"Id": i, "Book_Status__c": "working"} for i in changed], world.reps[0]
    )
    assert all(r.success for r in results)
    soql = f"SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp > {cursor}"
    rows = list(iter_all_records(sf, soql))
    assert sorted(r["Id"] for r in rows) == sorted(changed)
    assert {r["SystemModstamp"] for r in rows} == {format_datetime(clock.now())}
    later = f"SELECT Id FROM Account WHERE SystemModstamp > {rows[0]['SystemModstamp']}"
    assert sf.query(later)["totalSize"] == 0


def test_deleted_and_archived_rows_only_in_query_all(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    store = server.store
    today = store.clock.today()
    tasks = store.insert(
        "Task",
        [
            {
                "WhatId": world.accounts[0],
                "OwnerId": world.reps[0],
                "Subject": "old",
                "ActivityDate": (today - timedelta(days=400)).isoformat(),
            },
            {
                "WhatId": world.accounts[0],
                "OwnerId": world.reps[0],
                "Subject": "new",
                "ActivityDate": (today - timedelta(days=3)).isoformat(),
            },
        ],
    )
    store.delete("Account", [world.accounts[1]])
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 39
    all_acc = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert all_acc["totalSize"] == 40
    assert [r["Id"] for r in all_acc["records"] if r["IsDeleted"]] == [world.accounts[1]]
    live = sf.query("SELECT Id, AccountId, IsArchived FROM Task")["records"]
    assert [(r["Id"], r["AccountId"], r["IsArchived"]) for r in live] == [
        (tasks[1], world.accounts[0], False)
    ]
    everything = sf.query_all("SELECT Id, IsArchived FROM Task", include_deleted=True)["records"]
    assert {r["Id"]: r["IsArchived"] for r in everything} == {tasks[0]: True, tasks[1]: False}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("NumberOfEmployees < 3", [0, 1, 2]),
        ("NumberOfEmployees >= 38 OR NumberOfEmployees = 0", [0, 38, 39]),
        ("(NumberOfEmployees < 2 OR NumberOfEmployees > 37) AND Name != 'Account 39'", [0, 1, 38]),
        ("Name IN ('Account 05', 'account 06')", [5, 6]),  # SOQL strings compare case-blind
        ("Name NOT IN ('Account 05') AND NumberOfEmployees <= 6 AND NumberOfEmployees > 3", [4, 6]),
        ("Name LIKE 'Account 1%'", list(range(10, 20))),
        ("NOT NumberOfEmployees > 1", [0, 1]),
        ("CreatedDate = TODAY AND NumberOfEmployees < 2", [0, 1]),
        ("CreatedDate = LAST_N_DAYS:3 AND NumberOfEmployees = 1", [1]),
        ("CreatedDate < YESTERDAY", []),
        ("Book_Status__c = null AND NumberOfEmployees = 2", [2]),
    ],
)
def test_where_clause_subset(sf: Salesforce, world: World, where: str, expected: list[int]) -> None:
    soql = f"SELECT Id, NumberOfEmployees FROM Account WHERE {where} ORDER BY NumberOfEmployees"
    rows = sf.query_all(soql)["records"]
    assert [r["NumberOfEmployees"] for r in rows] == expected


def test_not_equal_keeps_nulls_like_soql(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    server.store.update("Account", [{"Id": world.accounts[0], "Book_Status__c": "ready"}])
    rows = sf.query_all("SELECT Id FROM Account WHERE Book_Status__c != 'ready'")["records"]
    assert len(rows) == 39


def test_order_by_limit_offset_and_id_literals(sf: Salesforce, world: World) -> None:
    soql = "SELECT Id, Name FROM Account ORDER BY NumberOfEmployees DESC LIMIT 3 OFFSET 1"
    assert [r["Name"] for r in sf.query(soql)["records"]] == [
        "Account 38",
        "Account 37",
        "Account 36",
    ]
    id15 = world.accounts[4][:15]  # 15-char ids are accepted and normalised
    assert (
        sf.query(f"SELECT Id FROM Account WHERE Id = '{id15}'")["records"][0]["Id"]
        == (world.accounts[4])
    )


def test_quotes_in_literals_are_values_not_sql(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    server.store.insert(
        "Account", [{"Name": "O'Brien; DROP TABLE Account", "OwnerId": world.reps[0]}]
    )
    soql = "SELECT Name FROM Account WHERE Name = 'O\\'Brien; DROP TABLE Account'"
    assert [r["Name"] for r in sf.query(soql)["records"]] == ["O'Brien; DROP TABLE Account"]
    assert sf.query("SELECT Id FROM Account WHERE Name = 'x\\' OR Name != \\'y'")["totalSize"] == 0
    assert server.store.count("Account") == 41


def test_typed_json_values(server: LocalCrmServer, sf: Salesforce, world: World) -> None:
    row = sf.query(
        f"SELECT Id, NumberOfEmployees, IsDeleted, CreatedDate, AnnualRevenue FROM Account "
        f"WHERE Id = '{world.accounts[7]}'"
    )["records"][0]
    assert row["NumberOfEmployees"] == 7 and row["IsDeleted"] is False
    assert row["CreatedDate"] == format_datetime(server.store.clock.now())
    assert row["AnnualRevenue"] is None
    assert row["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v62.0/sobjects/Account/{world.accounts[7]}",
    }


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Id, Owner.Name FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT COUNT(Id) FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "MALFORMED_QUERY"),
        ("SELECT Nope FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
        ("SELECT Id FROM Account WHERE CreatedDate > '2025-01-01'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2025-01-01", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees = '3'", "INVALID_FIELD"),
    ],
)
def test_unsupported_or_bad_soql_is_rejected(raw: RawApi, soql: str, code: str) -> None:
    resp = raw.call("GET", "query", params={"q": soql})
    assert resp.status_code == 400
    body = resp.json()
    assert len(body) == 1 and body[0]["errorCode"] == code and body[0]["message"]


def test_expired_locator_is_invalid_query_locator(raw: RawApi, world: World) -> None:
    resp = raw.call("GET", "query/01gDy0000000099AAA-2000")
    assert resp.status_code == 400
    assert resp.json() == [
        {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}
    ]
