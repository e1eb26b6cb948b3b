"""Writes: sObject Collections (allOrNone, per-record errors in request order), single records,
field history, describe."""

from __future__ import annotations

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from local_crm.db import make_id
from local_crm.server import DEFAULT_USERNAME, LocalCrmServer

from .conftest import RawApi, World


def _acc(record_id: str, **fields: object) -> dict:
    return {"attributes": {"type": "Account"}, "Id": record_id, **fields}


def _update(sf: Salesforce, records: list[dict], all_or_none: bool) -> list[dict]:
    return sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": all_or_none, "records": records}
    )


def _integration_user(server: LocalCrmServer) -> str:
    with server.store.connection() as con:
        return con.execute(
            'SELECT "Id" FROM "User" WHERE "Username" = ?', (DEFAULT_USERNAME,)
        ).fetchone()[0]


def test_collection_with_one_invalid_record_applies_the_others_in_order(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    locked = server.store.insert("Account", [{"Name": "INVALID", "OwnerId": world.reps[0]}])[0]
    a = [world.accounts[0], world.accounts[1], locked]  # INVALID is locked by a validation rule
    records = [
        _acc(a[0], Book_Status__c="working"),
        _acc(a[2], Book_Status__c="working"),
        _acc(a[1], Book_Status__c="working"),
    ]
    results = _update(sf, records, all_or_none=False)
    assert [r["id"] for r in results] == [a[0], a[2], a[1]]
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"] == [
        {
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Accounts named INVALID are locked (validation rule Locked_Test_Account)",
            "fields": [],
        }
    ]
    status = {i: server.store.get("Account", i)["Book_Status__c"] for i in a[:3]}
    assert status == {a[0]: "working", a[1]: "working", a[2]: None}


def test_all_or_none_applies_nothing(server: LocalCrmServer, sf: Salesforce, world: World) -> None:
    a = world.accounts
    before = {i: server.store.get("Account", i) for i in a[:3]}
    history_before = server.store.count("AccountHistory")
    records = [
        _acc(a[0], OwnerId=world.reps[1]),
        _acc(a[1], OwnerId=make_id("005", 9999)),
        _acc(a[2], OwnerId=world.reps[2]),
    ]
    results = _update(sf, records, all_or_none=True)
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert results[2]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert {i: server.store.get("Account", i) for i in a[:3]} == before
    assert server.store.count("AccountHistory") == history_before


@pytest.mark.parametrize(
    ("make", "code", "fields"),
    [
        (
            lambda w: _acc(w.accounts[0], OwnerId=w.inactive_rep),
            "INACTIVE_OWNER_OR_USER",
            ["OwnerId"],
        ),
        (
            lambda w: _acc(w.accounts[0], OwnerId=w.accounts[1]),
            "INVALID_CROSS_REFERENCE_KEY",
            ["OwnerId"],
        ),
        (lambda w: _acc(make_id("001", 9999)), "INVALID_CROSS_REFERENCE_KEY", []),
        (lambda w: _acc(w.accounts[0], OwnerId="005x"), "MALFORMED_ID", ["OwnerId"]),
        (
            lambda w: _acc(w.accounts[0], CreatedDate="2020-01-01T00:00:00Z"),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["CreatedDate"],
        ),
        (lambda w: _acc(w.accounts[0], Nope__c=1), "INVALID_FIELD", ["Nope__c"]),
        (
            lambda w: _acc(w.accounts[0], Book_Status__c="lost"),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["Book_Status__c"],
        ),
        (
            lambda w: _acc(w.accounts[0], NumberOfEmployees="many"),
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            ["NumberOfEmployees"],
        ),
        (lambda w: _acc(w.accounts[0], Name=None), "REQUIRED_FIELD_MISSING", ["Name"]),
        (lambda w: _acc("garbage"), "MALFORMED_ID", ["Id"]),
    ],
)
def test_per_record_error_shapes(
    sf: Salesforce, world: World, make: object, code: str, fields: list[str]
) -> None:
    (result,) = _update(sf, [make(world)], all_or_none=False)  # type: ignore[operator]
    assert result["success"] is False
    (error,) = result["errors"]
    assert error["statusCode"] == code
    assert error["fields"] == fields
    assert isinstance(error["message"], str) and error["message"]


def test_deleted_record_is_entity_is_deleted(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    server.store.delete("Account", [world.accounts[5]])
    (result,) = _update(sf, [_acc(world.accounts[5], Name="x")], all_or_none=False)
    assert result["errors"] == [
        {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
    ]


def test_more_than_200_records_is_rejected(raw: RawApi, world: World) -> None:
    records = [_acc(world.accounts[0], Name="x")] * 201
    resp = raw.call("PATCH", "composite/sobjects", json={"allOrNone": False, "records": records})
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_owner_change_writes_account_history(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    acc = world.accounts[0]
    server.store.clock.advance(__import__("datetime").timedelta(hours=1))
    results = _update(
        sf, [_acc(acc, OwnerId=world.reps[1], Book_Status__c="working", Name="Renamed")], False
    )
    assert results[0]["success"]
    rows = sf.query_all(
        "SELECT AccountId, CreatedById, CreatedDate, Field, OldValue, NewValue "
        "FROM AccountHistory "
        f"WHERE AccountId = '{acc}' ORDER BY Field"
    )["records"]
    actor = _integration_user(server)
    now = server.store.get("Account", acc)["SystemModstamp"]
    assert [
        (r["Field"], r["OldValue"], r["NewValue"], r["CreatedById"], r["CreatedDate"]) for r in rows
    ] == [
        ("Book_Status__c", None, "working", actor, now),
        ("OwnerId", world.reps[0], world.reps[1], actor, now),
    ]
    # Re-applying the same values changes nothing tracked, so no new history rows.
    _update(sf, [_acc(acc, OwnerId=world.reps[1], Book_Status__c="working")], False)
    assert server.store.count("AccountHistory") == 2


def test_single_record_get_patch_post_delete(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    acc = world.accounts[3]
    assert sf.Account.update(acc, {"Book_Status__c": "ready"}) == 204
    assert sf.Account.get(acc)["Book_Status__c"] == "ready"
    created = sf.Account.create(
        {"Name": "New Co", "OwnerId": world.reps[2], "Website": "new.example"}
    )
    assert created["success"] is True and created["id"].startswith("001")
    assert server.store.get("Account", created["id"])["OwnerId"] == world.reps[2]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.update(acc, {"OwnerId": world.inactive_rep})
    assert exc.value.content[0]["errorCode"] == "INACTIVE_OWNER_OR_USER"
    assert sf.Account.delete(acc) == 204
    assert server.store.get("Account", acc)["IsDeleted"] == 1


def test_collection_create_assigns_ids_in_order(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    records = [
        {
            "attributes": {"type": "Contact"},
            "LastName": f"L{i}",
            "AccountId": world.accounts[0],
            "OwnerId": world.reps[0],
        }
        for i in range(3)
    ]
    records.append({"attributes": {"type": "Contact"}, "OwnerId": world.reps[0]})  # no LastName
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
    )
    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[3]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    names = [server.store.get("Contact", r["id"])["LastName"] for r in results[:3]]
    assert names == ["L0", "L1", "L2"]


def test_describe_comes_from_schema(sf: Salesforce) -> None:
    desc = sf.Account.describe()
    fields = {f["name"]: f for f in desc["fields"]}
    assert desc["keyPrefix"] == "001"
    assert fields["OwnerId"]["referenceTo"] == ["User"] and fields["OwnerId"]["updateable"]
    assert fields["SystemModstamp"]["updateable"] is False
    assert [p["value"] for p in fields["Book_Status__c"]["picklistValues"]][:2] == [
        "ready",
        "resting",
    ]


def test_request_log_separates_reads_from_writes(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    since = server.last_request_seq()
    sf.query_all("SELECT Id FROM Account")
    sf.Account.describe()
    assert server.write_calls(since) == 0
    _update(sf, [_acc(world.accounts[0], Book_Status__c="ready")], all_or_none=False)
    assert server.write_calls(since) == 1
    (write,) = [r for r in server.request_log(since) if r["is_write"]]
    assert (write["method"], write["status"], write["records"]) == ("PATCH", 200, 1)


def test_collection_retrieve_answers_in_the_ids_order_with_null_for_what_it_cannot_show(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    deleted = world.accounts[2]
    server.store.delete("Account", [deleted])
    unknown = make_id("001", 999_999)
    ids = [world.accounts[1], deleted, "not-an-id", world.reps[0], unknown, world.accounts[0][:15]]
    body = {"ids": ids, "fields": ["id", "ownerid"]}
    got = sf.restful("composite/sobjects/Account", method="POST", json=body)
    assert [r and r["Id"] for r in got] == [
        world.accounts[1],
        None,
        None,
        None,
        None,
        world.accounts[0],
    ]
    assert got[0]["OwnerId"] == world.reps[0] and set(got[0]) == {"attributes", "Id", "OwnerId"}
    # The GET form answers the same; the retrieve is a read, not a write.
    since = server.last_request_seq()
    params = {"ids": ",".join(ids), "fields": "Id,OwnerId"}
    assert sf.restful("composite/sobjects/Account", method="GET", params=params) == got
    assert server.write_calls(since) == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"ids": ["x"] * 2001, "fields": ["Id"]}, 400, "EXCEEDED_ID_LIMIT"),
        ({"ids": ["x"], "fields": ["Id", "Nope__c"]}, 400, "INVALID_FIELD"),
        ({"ids": [], "fields": ["Id"]}, 400, "MISSING_ARGUMENT"),
        ({"ids": ["x"]}, 400, "JSON_PARSER_ERROR"),
    ],
)
def test_collection_retrieve_refuses_bad_requests(
    raw: RawApi, body: dict, status: int, code: str
) -> None:
    resp = raw.call("POST", "composite/sobjects/Account", json=body)
    assert resp.status_code == status
    assert resp.json()[0]["errorCode"] == code
