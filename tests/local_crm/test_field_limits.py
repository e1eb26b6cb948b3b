"""Salesforce's text length limits: a value over its field's length is refused with
STRING_TOO_LONG in each API's own shape, and nothing of it is stored."""

from __future__ import annotations

import csv
import io

from simple_salesforce import Salesforce

from local_crm.schema import OBJECTS
from local_crm.server import LocalCrmServer

from .conftest import RawApi, World

TEN_MB = "x" * (10 * 1024 * 1024)


def test_collections_refuse_a_10_mb_value_per_record(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    a = world.accounts
    records = [
        {"attributes": {"type": "Account"}, "Id": a[0], "Distribution_Reason__c": "rotation"},
        {"attributes": {"type": "Account"}, "Id": a[1], "Distribution_Reason__c": TEN_MB},
    ]
    results = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
    )
    assert [r["success"] for r in results] == [True, False]
    (error,) = results[1]["errors"]
    assert error["statusCode"] == "STRING_TOO_LONG"
    assert error["fields"] == ["Distribution_Reason__c"]
    assert "max length=255" in error["message"] and len(error["message"]) < 200
    assert server.store.get("Account", a[0])["Distribution_Reason__c"] == "rotation"
    assert server.store.get("Account", a[1])["Distribution_Reason__c"] is None


def test_rest_single_record_refuses_a_10_mb_value(
    server: LocalCrmServer, raw: RawApi, world: World
) -> None:
    resp = raw.call("PATCH", f"sobjects/Account/{world.accounts[2]}", json={"Name": TEN_MB})
    assert resp.status_code == 400
    (error,) = resp.json()
    assert (error["errorCode"], error["fields"]) == ("STRING_TOO_LONG", ["Name"])
    created = raw.call(
        "POST", "sobjects/Account", json={"Name": "ok", "OwnerId": world.reps[0], "Website": TEN_MB}
    )
    assert created.status_code == 400 and created.json()[0]["errorCode"] == "STRING_TOO_LONG"
    assert server.store.get("Account", world.accounts[2])["Name"] == "Account 02"


def test_bulk_ingest_fails_the_oversized_row_only(
    server: LocalCrmServer, raw: RawApi, world: World
) -> None:
    job = raw.call("POST", "jobs/ingest", json={"object": "Account", "operation": "update"}).json()
    body = (
        f"Id,Distribution_Reason__c\n{world.accounts[3]},rotation\n{world.accounts[4]},{TEN_MB}\n"
    )
    raw.call("PUT", f"jobs/ingest/{job['id']}/batches", data=body,
             headers={"Content-Type": "text/csv"})  # fmt: skip
    raw.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    info = raw.call("GET", f"jobs/ingest/{job['id']}").json()
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    failed = list(
        csv.DictReader(io.StringIO(raw.call("GET", f"jobs/ingest/{job['id']}/failedResults").text))
    )
    assert [r["sf__Id"] for r in failed] == [world.accounts[4]]
    assert failed[0]["sf__Error"].startswith("STRING_TOO_LONG:")
    assert server.store.get("Account", world.accounts[3])["Distribution_Reason__c"] == "rotation"
    assert server.store.get("Account", world.accounts[4])["Distribution_Reason__c"] is None


def test_every_text_field_takes_its_limit_and_refuses_one_more(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    """Per Account text field: exactly `length` characters are stored, one more is refused;
    `describe` reports the same length."""
    account = OBJECTS["Account"]
    lengths = {f["name"]: f["length"] for f in sf.Account.describe()["fields"]}
    texts = [f for f in account.fields if f.type in ("string", "url") and f.updateable]
    assert texts
    for f in texts:
        limit = lengths[f.name]
        assert limit == f.max_length and limit > 0
        ok = sf.Account.update(world.accounts[5], {f.name: "y" * limit})
        assert ok == 204
        results = sf.restful(
            "composite/sobjects",
            method="PATCH",
            json={
                "allOrNone": False,
                "records": [{"attributes": {"type": "Account"}, "Id": world.accounts[5],
                             f.name: "z" * (limit + 1)}],
            },
        )  # fmt: skip
        assert results[0]["errors"][0]["statusCode"] == "STRING_TOO_LONG", f.name
        assert server.store.get("Account", world.accounts[5])[f.name] == "y" * limit
