"""Fixtures for the local CRM API tests: an in-process server on a temp database, a tiny world
built with `CrmStore.insert`, and clients (simple-salesforce and raw HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from local_crm.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    LocalCrmServer,
    start_in_process,
)

API = "/services/data/v62.0"


@dataclass
class World:
    """Ids of the tiny world: reps, an inactive rep, and accounts owned by rep 0."""

    reps: list[str]
    inactive_rep: str
    accounts: list[str]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalCrmServer]:
    with start_in_process(tmp_path / "crm.sqlite", page_size=7) as srv:
        yield srv


@pytest.fixture
def world(server: LocalCrmServer) -> World:
    store = server.store
    reps = store.insert(
        "User",
        [
            {"Username": f"rep{i}@books.local", "Name": f"Rep {i}", "IsActive": True}
            for i in range(3)
        ],
    )
    inactive = store.insert(
        "User", [{"Username": "gone@books.local", "Name": "Gone", "IsActive": False}]
    )[0]
    accounts = store.insert(
        "Account",
        [
            {"Name": f"Account {i:02d}", "OwnerId": reps[0], "NumberOfEmployees": i}
            for i in range(40)
        ],
    )
    return World(reps, inactive, accounts)


@pytest.fixture
def sf(server: LocalCrmServer) -> Salesforce:
    """simple-salesforce logged in with the OAuth password flow (as the integration user)."""
    return Salesforce(
        username=DEFAULT_USERNAME,
        password=DEFAULT_PASSWORD,
        consumer_key=DEFAULT_CLIENT_ID,
        consumer_secret=DEFAULT_CLIENT_SECRET,
        session=server.session(),
        version="62.0",
    )


class RawApi:
    """Plain HTTP against the server, for asserting exact status codes, headers and bodies."""

    def __init__(self, server: LocalCrmServer):
        self.server = server
        self.token = server.issue_token()
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        url = self.server.url + (path if path.startswith("/services") else f"{API}/{path}")
        return self.http.request(method, url, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def raw(server: LocalCrmServer) -> RawApi:
    return RawApi(server)
