"""Connector behaviour against a scripted transport: retries, Retry-After, re-login, paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from crm.retry import Backoff, RetryPolicy, parse_retry_after
from crm.salesforce import CrmError, CrmSettings, connect
from tests.fakes import FakeClock

Reply = tuple[int, dict[str, str], Any]


class Scripted(BaseAdapter):
    """Answers each request with the handler's reply; records (time, method, url, headers)."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], Reply], clock: FakeClock):
        super().__init__()
        self.handler = handler
        self.clock = clock
        self.log: list[tuple[float, str, str, dict[str, str]]] = []

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003 - requests' adapter signature
        self.log.append((self.clock(), request.method, request.url, dict(request.headers)))
        status, headers, body = self.handler(request)
        resp = requests.Response()
        resp.status_code = status
        resp.headers.update(headers)
        resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        resp.url = request.url
        resp.request = request
        return resp

    def close(self) -> None:
        pass


SETTINGS = CrmSettings(
    kind="salesforce",
    base_url="https://acme.my.salesforce.com",
    client_id="cid",
    client_secret="canary-secret-123",
)
TOKEN = {"access_token": "tok-1", "instance_url": "https://acme.my.salesforce.com"}


def make(handler, policy: RetryPolicy | None = None):
    clock = FakeClock()
    adapter = Scripted(handler, clock)
    session = requests.Session()
    session.mount("https://", adapter)
    conn = connect(
        SETTINGS, sleep=clock.sleep, clock=clock, policy=policy or RetryPolicy(), session=session
    )
    return conn, adapter, clock


def api_calls(adapter: Scripted) -> list[tuple[float, str, str, dict[str, str]]]:
    return [entry for entry in adapter.log if "/oauth2/" not in entry[2]]


def test_login_uses_client_credentials_and_hides_secret():
    def handler(req):
        assert req.url.endswith("/services/oauth2/token")
        assert "grant_type=client_credentials" in req.body
        return 200, {}, TOKEN

    conn, _, _ = make(handler)
    assert conn.sf is not None and conn.sf.session_id == "tok-1"
    assert "canary-secret-123" not in repr(SETTINGS)
    assert conn.base_url == "https://acme.my.salesforce.com/services/data/v62.0/"


def test_429_waits_at_least_retry_after_then_succeeds():
    replies = iter(
        [
            (429, {"Retry-After": "7"}, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "x"}]),
            (403, {"Retry-After": "2"}, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "x"}]),
            (200, {"Sforce-Limit-Info": "api-usage=42/15000"}, {"ok": True}),
        ]
    )

    def handler(req):
        return (200, {}, TOKEN) if "/oauth2/" in req.url else next(replies)

    conn, adapter, _ = make(handler)
    assert conn.request("GET", "limits").json() == {"ok": True}
    times = [t for t, *_ in api_calls(adapter)]
    assert len(times) == 3
    assert times[1] - times[0] >= 7
    assert times[2] - times[1] >= 2
    assert conn.api_usage == (42, 15000)


def test_expired_session_relogs_in_once_and_retries_with_new_token():
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    seen_auth: list[str] = []

    def handler(req):
        if "/oauth2/" in req.url:
            return 200, {}, {**TOKEN, "access_token": next(tokens)}
        seen_auth.append(req.headers["Authorization"])
        if req.headers["Authorization"] == "Bearer tok-1":
            return 401, {}, [{"errorCode": "INVALID_SESSION_ID", "message": "expired"}]
        return 200, {}, {"ok": True}

    conn, _, _ = make(handler)
    assert conn.request("GET", "sobjects").json() == {"ok": True}
    assert seen_auth == ["Bearer tok-1", "Bearer tok-2"]
    assert conn.relogin_count == 1
    assert conn.sf.session_id == "tok-2"


def test_persistent_401_raises_after_one_relogin():
    def handler(req):
        if "/oauth2/" in req.url:
            return 200, {}, TOKEN
        return 401, {}, [{"errorCode": "INVALID_SESSION_ID", "message": "expired"}]

    conn, adapter, _ = make(handler)
    with pytest.raises(CrmError) as err:
        conn.request("GET", "sobjects")
    assert err.value.code == "INVALID_SESSION_ID" and err.value.status == 401
    assert conn.relogin_count == 1
    assert len(api_calls(adapter)) == 2


def test_timeouts_are_retried_with_growing_backoff_then_give_up():
    def handler(req):
        if "/oauth2/" in req.url:
            return 200, {}, TOKEN
        raise requests.ConnectTimeout("boom")

    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0, seed=7)
    conn, adapter, clock = make(handler, policy)
    with pytest.raises(CrmError) as err:
        conn.request("GET", "limits")
    assert err.value.code == "TIMEOUT"
    assert len(api_calls(adapter)) == 4
    assert len(clock.sleeps) == 3
    # full jitter in [cap/2, cap] with caps 1, 2, 3 (capped)
    for wait, cap in zip(clock.sleeps, [1.0, 2.0, 3.0], strict=True):
        assert cap / 2 <= wait <= cap


def test_permanent_error_is_not_retried():
    def handler(req):
        if "/oauth2/" in req.url:
            return 200, {}, TOKEN
        return 400, {}, [{"errorCode": "MALFORMED_QUERY", "message": "unexpected token"}]

    conn, adapter, clock = make(handler)
    with pytest.raises(CrmError) as err:
        conn.request("GET", "query/", params={"q": "SELEC"})
    assert (err.value.code, err.value.status) == ("MALFORMED_QUERY", 400)
    assert "unexpected token" in str(err.value)
    assert len(api_calls(adapter)) == 1 and clock.sleeps == []


def test_bad_credentials_raise_oauth_error_without_secret():
    def handler(req):
        return 400, {}, {"error": "invalid_client", "error_description": "invalid client creds"}

    with pytest.raises(CrmError) as err:
        make(handler)
    assert err.value.code == "invalid_client"
    assert "canary-secret-123" not in str(err.value)


def test_query_all_pages_follows_next_records_url_and_uses_query_all():
    pages = {
        "first": {
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/queryAll/01g-2000",
            "records": [{"attributes": {"type": "Task"}, "Id": "a"}, {"Id": "b"}],
        },
        "second": {"totalSize": 3, "done": True, "records": [{"Id": "c"}]},
    }

    def handler(req):
        if "/oauth2/" in req.url:
            return 200, {}, TOKEN
        assert "/queryAll/" in req.url
        return 200, {}, pages["second" if "01g-2000" in req.url else "first"]

    conn, _, _ = make(handler)
    got = list(conn.query_all_pages("SELECT Id FROM Task", include_deleted=True))
    assert got == [[{"Id": "a"}, {"Id": "b"}], [{"Id": "c"}]]
    assert conn.last_total_size == 3


def test_bulk_query_polls_then_pages_with_locator():
    polls = iter(["UploadComplete", "InProgress", "JobComplete"])
    bodies = {None: (b"Id\na\n", "LOC1"), "LOC1": (b"Id\nb\n", "null")}

    def handler(req):
        if "/oauth2/" in req.url:
            return 200, {}, TOKEN
        if req.method == "POST":
            body = json.loads(req.body)
            assert body["operation"] == "queryAll" and body["contentType"] == "CSV"
            return 200, {}, {"id": "750X"}
        if req.url.endswith("/jobs/query/750X"):
            return 200, {}, {"id": "750X", "state": next(polls)}
        locator = req.url.split("locator=")[1] if "locator=" in req.url else None
        content, nxt = bodies[locator]
        return 200, {"Sforce-Locator": nxt}, content

    conn, _, clock = make(handler)
    chunks = list(conn.bulk_query_csv("SELECT Id FROM Account", include_deleted=True))
    assert chunks == [b"Id\na\n", b"Id\nb\n"]
    assert len(clock.sleeps) == 2


def test_bulk_query_failed_job_raises():
    def handler(req):
        if "/oauth2/" in req.url:
            return 200, {}, TOKEN
        if req.method == "POST":
            return 200, {}, {"id": "750Y"}
        return 200, {}, {"id": "750Y", "state": "Failed", "errorMessage": "INVALID_FIELD: Foo"}

    conn, _, _ = make(handler)
    with pytest.raises(CrmError, match="INVALID_FIELD: Foo"):
        list(conn.bulk_query_csv("SELECT Foo FROM Account"))


def test_from_env_names_missing_variables_and_reads_only_env():
    with pytest.raises(CrmError, match="SF_CLIENT_SECRET"):
        CrmSettings.from_env(
            environ={"SF_INSTANCE_URL": "https://x.my.salesforce.com"} | {"SF_CLIENT_ID": "id"}
        )
    s = CrmSettings.from_env(
        environ={
            "SF_INSTANCE_URL": "https://x.my.salesforce.com",
            "SF_CLIENT_ID": "id",
            "SF_CLIENT_SECRET": "canary-secret-123",
        }
    )
    assert s.kind == "salesforce" and s.username is None
    assert "canary-secret-123" not in repr(s)


def test_backoff_never_waits_less_than_retry_after_and_is_seeded():
    a = Backoff(RetryPolicy(seed=3))
    b = Backoff(RetryPolicy(seed=3))
    assert [a.delay(n) for n in range(1, 6)] == [b.delay(n) for n in range(1, 6)]
    assert a.delay(1, retry_after=30) >= 30
    assert parse_retry_after("12") == 12.0 and parse_retry_after(None) is None
