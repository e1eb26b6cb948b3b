"""Bulk API 2.0: ingest jobs (states, result files) and query jobs (locator paging)."""

from __future__ import annotations

import csv
import io

import pytest
from simple_salesforce import Salesforce

from local_crm.server import LocalCrmServer

from .conftest import RawApi, World


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.slow
def test_ingest_25000_rows_reaches_job_complete_with_result_files(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    bad = {17, 4_999, 24_998}  # rows with an inactive owner
    records = [
        {
            "Name": f"Bulk {i}",
            "OwnerId": world.inactive_rep if i in bad else world.reps[i % 3],
            "NumberOfEmployees": str(i),
        }
        for i in range(25_000)
    ]
    (summary,) = sf.bulk2.Account.insert(records=records, wait=0.05)
    assert summary["numberRecordsProcessed"] == 25_000
    assert summary["numberRecordsFailed"] == 3
    job_id = summary["job_id"]
    assert sf.bulk2.Account._client.get_job(job_id, False)["state"] == "JobComplete"

    ok = _csv(sf.bulk2.Account.get_successful_records(job_id))
    failed = _csv(sf.bulk2.Account.get_failed_records(job_id))
    assert len(ok) == 24_997 and {r["sf__Created"] for r in ok} == {"true"}
    assert [r["Name"] for r in failed] == ["Bulk 17", "Bulk 4999", "Bulk 24998"]
    assert all(
        r["sf__Id"] == "" and r["sf__Error"].startswith("INACTIVE_OWNER_OR_USER:") for r in failed
    )
    stored = server.store.get("Account", ok[123]["sf__Id"])
    assert stored["Name"] == ok[123]["Name"] and stored["NumberOfEmployees"] == int(
        ok[123]["NumberOfEmployees"]
    )
    assert server.store.count("Account") == 40 + 24_997
    unprocessed = sf.bulk2.Account.get_unprocessed_records(job_id).strip().split(",")
    assert sorted(unprocessed) == ["Name", "NumberOfEmployees", "OwnerId"]  # header only


def test_ingest_update_and_job_state_machine(
    server: LocalCrmServer, raw: RawApi, world: World
) -> None:
    created = raw.call("POST", "jobs/ingest", json={"object": "Account", "operation": "update"})
    assert created.status_code == 200
    job = created.json()
    assert job["state"] == "Open" and job["contentUrl"].endswith(
        f"/jobs/ingest/{job['id']}/batches"
    )
    body = (
        "Id,Book_Status__c,Rest_Until__c\n"
        + "".join(f"{a},resting,2025-03-01\n" for a in world.accounts[:5])
        + "001Dy0000000001IAX,resting,\n"
    )
    put = raw.call(
        "PUT", f"jobs/ingest/{job['id']}/batches", data=body, headers={"Content-Type": "text/csv"}
    )
    assert put.status_code == 201
    closed = raw.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    info = raw.call("GET", f"jobs/ingest/{job['id']}").json()
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete",
        6,
        1,
    )
    failed = _csv(raw.call("GET", f"jobs/ingest/{job['id']}/failedResults").text)
    assert failed[0]["sf__Error"].startswith("MALFORMED_ID:")
    assert server.store.get("Account", world.accounts[4])["Rest_Until__c"] == "2025-03-01"
    # A closed job takes no more data; an unknown job is 404.
    again = raw.call("PUT", f"jobs/ingest/{job['id']}/batches", data=body)
    assert again.status_code == 409
    assert raw.call("GET", "jobs/ingest/750Dy0000000099IAA").status_code == 404
    assert raw.call("DELETE", f"jobs/ingest/{job['id']}").status_code == 204


def test_abort_open_job(raw: RawApi, world: World) -> None:
    job = raw.call("POST", "jobs/ingest", json={"object": "Account", "operation": "update"}).json()
    aborted = raw.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    bad = raw.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    assert bad.status_code == 400


def test_bulk_query_pages_with_locator(raw: RawApi, sf: Salesforce, world: World) -> None:
    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, IsDeleted FROM Account ORDER BY Name", max_records=15, wait=0.05
        )
    )
    rows = [r for page in pages for r in _csv(page)]
    assert len(pages) == 3
    assert [r["Id"] for r in rows] == world.accounts
    assert {r["IsDeleted"] for r in rows} == {"false"}
    job = raw.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELECT Id FROM Account"}
    )
    first = raw.call("GET", f"jobs/query/{job.json()['id']}/results", params={"maxRecords": 30})
    assert first.headers["Sforce-NumberOfRecords"] == "30"
    second = raw.call(
        "GET",
        f"jobs/query/{job.json()['id']}/results",
        params={"maxRecords": 30, "locator": first.headers["Sforce-Locator"]},
    )
    assert second.headers["Sforce-NumberOfRecords"] == "10"
    assert second.headers["Sforce-Locator"] == "null"
    assert first.text.startswith('"Id"\n')


def test_bulk_query_rejects_bad_soql(raw: RawApi) -> None:
    resp = raw.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELECT FROM Account"}
    )
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "MALFORMED_QUERY"
