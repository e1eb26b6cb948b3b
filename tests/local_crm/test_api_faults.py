"""Fault injection: each fault answers with the status code, headers and body Salesforce
documents, per endpoint pattern, deterministically under a seed."""

from __future__ import annotations

import csv
import io
import time

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from local_crm.faults import FaultInjector
from local_crm.server import LocalCrmServer, start_in_process

from .conftest import RawApi, World

Q = {"q": "SELECT Id FROM Account"}


@pytest.mark.parametrize(
    ("kind", "status", "code", "message"),
    [
        ("rate_limit", 429, "REQUEST_LIMIT_EXCEEDED", "Too many requests: retry later."),
        ("request_limit", 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        (
            "unavailable",
            503,
            "SERVER_UNAVAILABLE",
            "Server temporarily unavailable, please try again later.",
        ),
    ],
)
def test_request_faults_have_salesforce_shape_and_retry_after(
    server: LocalCrmServer,
    raw: RawApi,
    world: World,
    kind: str,
    status: int,
    code: str,
    message: str,
) -> None:
    fault = server.faults.add(kind, path="query*", times=2, retry_after=7)
    for _ in range(2):
        resp = raw.call("GET", "query", params=Q)
        assert resp.status_code == status
        assert resp.headers["Retry-After"] == "7"
        assert resp.json() == [{"message": message, "errorCode": code}]
        assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert raw.call("GET", "query", params=Q).status_code == 200  # `times` exhausted
    assert raw.call("GET", "sobjects/Account/describe").status_code == 200  # other endpoint
    assert fault.fired == 2
    log = server.request_log()
    assert [r["status"] for r in log[-4:]] == [status, status, 200, 200]
    assert log[-4]["error_code"] == code


def test_fault_after_n_calls_and_method_filter(
    server: LocalCrmServer, raw: RawApi, world: World
) -> None:
    server.faults.add("rate_limit", path="composite/sobjects", method="PATCH", after=2)
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "Id": world.accounts[0], "Name": "x"}],
    }
    statuses = [raw.call("PATCH", "composite/sobjects", json=body).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert raw.call("GET", "query", params=Q).status_code == 200


def test_daily_api_limit_is_enforced(tmp_path: object) -> None:
    with start_in_process(tmp_path / "crm.sqlite", api_limit=3) as srv:  # type: ignore[operator]
        raw = RawApi(srv)
        statuses = [raw.call("GET", "limits").status_code for _ in range(4)]
        last = raw.call("GET", "limits")
    assert statuses == [200, 200, 200, 403]
    assert last.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert last.headers["Sforce-Limit-Info"] == "api-usage=5/3"


def test_expired_session_mid_run(server: LocalCrmServer, world: World) -> None:
    server.faults.add("expired_session", path="query*", after=2, times=1)
    sf = Salesforce(
        instance=server.instance, session_id=server.issue_token(), session=server.session()
    )
    sf.query("SELECT Id FROM Account")
    sf.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.query("SELECT Id FROM Account")
    assert exc.value.status == 401
    assert exc.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    with pytest.raises(SalesforceExpiredSession):  # the session stays dead, on any endpoint
        sf.Account.describe()
    fresh = Salesforce(
        instance=server.instance, session_id=server.issue_token(), session=server.session()
    )
    assert fresh.query("SELECT COUNT() FROM Account")["totalSize"] == 40


def test_simple_salesforce_relogs_in_after_expiry(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    server.faults.add("expired_session", path="query*", times=1)
    old_token = sf.session_id
    since = server.last_request_seq()
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 40
    assert sf.session_id != old_token
    calls = [
        (r["path"].rstrip("/").rsplit("/", 1)[-1], r["status"]) for r in server.request_log(since)
    ]
    assert calls == [("query", 401), ("token", 200), ("query", 200)]


def _lock_run(server: LocalCrmServer, raw: RawApi, ids: list[str]) -> list[dict]:
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Id": i, "Book_Status__c": "working"} for i in ids
        ],
    }
    resp = raw.call("PATCH", "composite/sobjects", json=body)
    assert resp.status_code == 200
    return resp.json()


def test_lock_rows_share_is_per_record_deterministic_and_transient(
    server: LocalCrmServer, raw: RawApi, world: World
) -> None:
    server.faults.add("lock_rows", path="composite/sobjects", share=0.3)
    first = _lock_run(server, raw, world.accounts)
    failed = [r["id"] for r in first if not r["success"]]
    assert 4 <= len(failed) <= 20  # ~30% of 40
    assert [r["id"] for r in first] == world.accounts  # request order
    err = next(r for r in first if not r["success"])["errors"]
    assert err == [
        {
            "statusCode": "UNABLE_TO_LOCK_ROW",
            "message": "unable to obtain exclusive access to this record or 1 records: "
            + failed[0],
            "fields": [],
        }
    ]
    assert {i for i in world.accounts if server.store.get("Account", i)["Book_Status__c"]} == (
        set(world.accounts) - set(failed)
    )
    # Same seed, same calls -> the same records lock.
    again = FaultInjector(seed=server.faults.seed)
    again.add("lock_rows", path="composite/sobjects", share=0.3)
    replay = again.record_errors("PATCH", "composite/sobjects", world.accounts)
    assert sorted(world.accounts[p] for p in replay) == sorted(failed)
    # Retrying only the failures draws again: most clear, none fail forever.
    for _ in range(10):
        failed = [r["id"] for r in _lock_run(server, raw, failed) if not r["success"]]
        if not failed:
            break
    assert failed == []


def test_persistent_lock_never_clears(server: LocalCrmServer, raw: RawApi, world: World) -> None:
    stuck = world.accounts[2]
    server.faults.add("persistent_lock", ids=[stuck])
    for _ in range(3):
        results = _lock_run(server, raw, world.accounts[:4])
        assert [r["success"] for r in results] == [True, True, False, True]
        assert results[2]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    token = raw.token
    single = requests.patch(
        f"{server.url}/services/data/v62.0/sobjects/Account/{stuck}",
        json={"Name": "x"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert single.status_code == 400 and single.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"


def test_lock_rows_in_bulk_become_failed_rows(
    server: LocalCrmServer, sf: Salesforce, world: World
) -> None:
    server.faults.add("persistent_lock", path="jobs/ingest*", ids=world.accounts[:2])
    (summary,) = sf.bulk2.Account.update(
        records=[{"Id": i, "Book_Status__c": "ready"} for i in world.accounts[:6]], wait=0.05
    )
    assert summary["numberRecordsFailed"] == 2
    failed = list(
        csv.DictReader(io.StringIO(sf.bulk2.Account.get_failed_records(summary["job_id"])))
    )
    assert sorted(r["sf__Id"] for r in failed) == sorted(world.accounts[:2])
    assert all(r["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:") for r in failed)


def test_bulk_job_fails_with_unprocessed_records(
    server: LocalCrmServer, raw: RawApi, world: World
) -> None:
    server.faults.add("bulk_job_failed", path="jobs/ingest*", processed_rows=15, times=1)
    job = raw.call("POST", "jobs/ingest", json={"object": "Account", "operation": "update"}).json()
    body = "Id,Book_Status__c\n" + "".join(f"{a},retired\n" for a in world.accounts)
    raw.call(
        "PUT", f"jobs/ingest/{job['id']}/batches", data=body, headers={"Content-Type": "text/csv"}
    )
    raw.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    info = raw.call("GET", f"jobs/ingest/{job['id']}").json()
    assert info["state"] == "Failed" and info["numberRecordsProcessed"] == 15
    assert info["errorMessage"].startswith("InternalServerError")
    unprocessed = list(
        csv.DictReader(
            io.StringIO(raw.call("GET", f"jobs/ingest/{job['id']}/unprocessedrecords").text)
        )
    )
    assert [r["Id"] for r in unprocessed] == world.accounts[15:]
    ok = list(
        csv.DictReader(
            io.StringIO(raw.call("GET", f"jobs/ingest/{job['id']}/successfulResults").text)
        )
    )
    assert [r["sf__Id"] for r in ok] == world.accounts[:15]
    retired = [
        a for a in world.accounts if server.store.get("Account", a)["Book_Status__c"] == "retired"
    ]
    assert retired == world.accounts[:15]


def test_slow_responses(server: LocalCrmServer, raw: RawApi, world: World) -> None:
    server.faults.add("slow", path="query*", delay=0.3, times=1)
    started = time.monotonic()
    assert raw.call("GET", "query", params=Q).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_dropped_connection(server: LocalCrmServer, raw: RawApi, world: World) -> None:
    with server.faults.injected("drop", path="query*", times=1) as fault:
        with pytest.raises(requests.ConnectionError):
            raw.call("GET", "query", params=Q)
        assert fault.fired == 1
    assert raw.call("GET", "query", params=Q).status_code == 200
    assert server.faults.active == []


def test_faults_on_the_token_endpoint(server: LocalCrmServer) -> None:
    server.faults.add("unavailable", path="oauth2/token", times=1)
    resp = requests.post(
        f"{server.url}/services/oauth2/token", data={"grant_type": "password"}, timeout=10
    )
    assert resp.status_code == 503


def test_unknown_fault_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultInjector().add("meteor")
