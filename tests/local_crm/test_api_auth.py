"""OAuth token endpoint, session checks and the API usage header."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from local_crm.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_USERNAME,
    LocalCrmServer,
)


def _whoami(sf: Salesforce) -> str:
    return sf.query(f"SELECT Id FROM User WHERE Username = '{DEFAULT_USERNAME}'")["records"][0][
        "Id"
    ]


def test_password_flow_logs_in_and_queries(server: LocalCrmServer, sf: Salesforce) -> None:
    assert sf.sf_instance == server.instance
    assert sf.session_id.startswith("00D")
    assert _whoami(sf).startswith("005")


def test_client_credentials_flow_runs_as_the_apps_user(server: LocalCrmServer) -> None:
    sf = Salesforce(
        consumer_key=DEFAULT_CLIENT_ID,
        consumer_secret=DEFAULT_CLIENT_SECRET,
        domain="local",  # simple-salesforce uses client_credentials for a My Domain only
        session=server.session(),
    )
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 1


def test_bad_password_is_invalid_grant(server: LocalCrmServer) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        Salesforce(
            username=DEFAULT_USERNAME,
            password="wrong",
            consumer_key=DEFAULT_CLIENT_ID,
            consumer_secret=DEFAULT_CLIENT_SECRET,
            session=server.session(),
        )
    assert exc.value.code == "invalid_grant"
    resp = requests.post(
        f"{server.url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "username": DEFAULT_USERNAME,
            "password": "wrong",
        },
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": "nope",
            },
            {"error": "invalid_client", "error_description": "invalid client credentials"},
        ),
        (
            {"grant_type": "client_credentials", "client_id": "unknown", "client_secret": "x"},
            {"error": "invalid_client", "error_description": "invalid client credentials"},
        ),
        (
            {"grant_type": "authorization_code", "client_id": DEFAULT_CLIENT_ID},
            {"error": "unsupported_grant_type", "error_description": "grant type not supported"},
        ),
    ],
)
def test_bad_client_credentials(server: LocalCrmServer, form: dict, expected: dict) -> None:
    resp = requests.post(f"{server.url}/services/oauth2/token", data=form, timeout=10)
    assert resp.status_code == 400
    assert resp.json() == expected


def test_inactive_user_cannot_log_in(server: LocalCrmServer) -> None:
    server.store.insert("User", [{"Username": "old@x", "Name": "Old", "IsActive": False}])
    server.store.set_password("old@x", "pw")
    form = {
        "grant_type": "password",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "username": "old@x",
        "password": "pw",
    }
    resp = requests.post(f"{server.url}/services/oauth2/token", data=form, timeout=10)
    assert resp.json()["error"] == "invalid_grant"


def test_missing_or_unknown_session_is_401(server: LocalCrmServer) -> None:
    resp = requests.get(f"{server.url}/services/data/v62.0/query?q=SELECT+Id+FROM+User", timeout=10)
    assert resp.status_code == 401
    assert resp.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    sf = Salesforce(instance=server.instance, session_id="00Dbogus", session=server.session())
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")


def test_usage_header_counts_every_call_and_persists(
    server: LocalCrmServer, sf: Salesforce
) -> None:
    sf.query("SELECT Id FROM User")
    first = sf.api_usage["api-usage"].used
    sf.query("SELECT Id FROM User")
    sf.query("SELECT Id FROM User")
    assert sf.api_usage["api-usage"].used == first + 2
    assert sf.api_usage["api-usage"].total == 100_000
    # Persisted in the database: a new server on the same file continues the count.
    with LocalCrmServer(server.store).start() as again:
        token = again.issue_token()
        resp = requests.get(
            f"{again.url}/services/data/v62.0/limits",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    assert resp.headers["Sforce-Limit-Info"] == f"api-usage={first + 3}/100000"
