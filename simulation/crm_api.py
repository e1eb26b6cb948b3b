"""How the simulated people reach the twin: the CRM API, through the product's own connector.

Reps and the market write tasks, events, return requests, opportunities, signals and leads
with sObject Collections calls, as a person's clicks or an integration would; nothing in the
behaviour writes below the API.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm.salesforce import CrmSettings, SalesforceConnection, connect
from local_crm.db import CrmStore
from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, start_in_process

BATCH = 200  # records per sObject Collections call (the API's limit)


class TwinWriteError(RuntimeError):
    """A simulated write the twin refused (names the object, record and error)."""


@dataclass
class TwinApi:
    conn: SalesforceConnection
    store: CrmStore

    def query(self, soql: str) -> list[dict[str, Any]]:
        rows = [r for page in self.conn.query_all_pages(soql) for r in page]
        return [{k: v for k, v in r.items() if k != "attributes"} for r in rows]

    def create(self, obj: str, records: Sequence[dict[str, Any]]) -> list[str]:
        return self._write("POST", obj, records)

    def update(self, obj: str, records: Sequence[dict[str, Any]]) -> list[str]:
        return self._write("PATCH", obj, records)

    def _write(self, method: str, obj: str, records: Sequence[dict[str, Any]]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(records), BATCH):
            chunk = [{"attributes": {"type": obj}, **r} for r in records[start : start + BATCH]]
            body = {"allOrNone": True, "records": chunk}
            results = self.conn.request(method, "composite/sobjects", json=body).json()
            for rec, res in zip(chunk, results, strict=True):
                if not res.get("success"):
                    raise TwinWriteError(f"{method} {obj} {rec.get('Id', '')}: {res.get('errors')}")
                ids.append(res["id"])
        return ids


@contextmanager
def twin_api(
    crm_db: Path, username: str | None = None, password: str | None = None
) -> Iterator[TwinApi]:
    """The twin served on a loopback port and a logged-in connection to it (as `username`
    when given, else as the integration user)."""
    server = start_in_process(crm_db)
    try:
        settings = CrmSettings(
            kind="local",
            base_url=server.url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            username=username,
            password=password,
        )
        yield TwinApi(connect(settings), server.store)
    finally:
        server.stop()
