"""Salesforce sObjects (Account, Lead) as write-back destinations: read by id, write by
Collections or Bulk 2.0. Every call names its object; one call never mixes objects.

Every result is keyed by record id, never by position (an API that reorders or drops results
must not make us attribute one account's outcome to another). HTTP-level retries (429, 503,
expired session) live in `crm.salesforce.SalesforceConnection.request`; per-record errors are
returned to the writer, which decides what to retry.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from local_crm.db import to_id18
from reverse_etl.plan import canonical_value

log = logging.getLogger(__name__)

BULK_NULL = "#N/A"  # Bulk 2.0 CSV: empty cell = leave as is, #N/A = set to null


class Connection(Protocol):
    """What the writer needs of `crm.salesforce.SalesforceConnection`."""

    api_usage: tuple[int, int] | None
    request_count: int

    def request(self, method: str, path: str, **kwargs: object) -> object: ...


@dataclass(frozen=True)
class RecordOutcome:
    """The CRM's answer for one record of a write."""

    success: bool
    code: str | None = None
    message: str | None = None


@functools.lru_cache(maxsize=1 << 17)
def norm_id(value: str) -> str:
    """18-char id, so 15/18-char forms of one record match (cached: a write-back normalises
    each id of a chunk several times, on its re-read, write results and read-back)."""
    return to_id18(str(value))


def read_records(
    conn: Connection, sobject: str, ids: Sequence[str], fields: Iterable[str]
) -> dict[str, dict[str, str | None]]:
    """Current values of `fields` for live `sobject` records in `ids` (absent: deleted/unknown).

    One sObject Collections retrieve (POST, up to 2,000 ids): a SOQL `Id IN (...)` travels in
    the URL and fits only ~500 ids. Entries are matched by their `Id`, never by position.
    """
    if not ids:
        return {}
    names = sorted(set(fields) - {"Id"})
    body = {"ids": [norm_id(i) for i in ids], "fields": ["Id", *names]}
    resp = conn.request("POST", f"composite/sobjects/{sobject}", json=body)
    out: dict[str, dict[str, str | None]] = {}
    for rec in resp.json():  # type: ignore[attr-defined]
        if rec is not None:
            out[norm_id(rec["Id"])] = {f: canonical_value(rec.get(f)) for f in names}
    return out


def update_collection(
    conn: Connection, sobject: str, records: Mapping[str, Mapping[str, str | None]]
) -> dict[str, RecordOutcome]:
    """PATCH composite/sobjects (allOrNone=false) for up to 200 records; results by id."""
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": sobject}, "Id": rec_id, **values}
            for rec_id, values in records.items()
        ],
    }
    resp = conn.request("PATCH", "composite/sobjects", json=body)
    out: dict[str, RecordOutcome] = {}
    for result in resp.json():  # type: ignore[attr-defined]
        rec_id = result.get("id")
        if not rec_id:
            # Salesforce may omit the id of a failed record; such a result cannot be matched
            # safely, so the record stays unresolved and is re-read on the next round.
            log.warning("write result without id ignored: %s", result)
            continue
        if result.get("success"):
            out[norm_id(rec_id)] = RecordOutcome(True)
        else:
            errors = result.get("errors") or [{}]
            first = errors[0]
            out[norm_id(rec_id)] = RecordOutcome(
                False,
                str(first.get("statusCode") or "UNKNOWN_ERROR"),
                "; ".join(str(e.get("message", "")) for e in errors),
            )
    return out


# -- Bulk API 2.0 ingest -----------------------------------------------------------------------


def bulk_create_job(conn: Connection, sobject: str) -> str:
    resp = conn.request(
        "POST",
        "jobs/ingest",
        json={
            "object": sobject,
            "operation": "update",
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        },
    )
    return str(resp.json()["id"])  # type: ignore[attr-defined]


def bulk_csv(records: Mapping[str, Mapping[str, str | None]]) -> str:
    """CSV for an update job: header Id + union of fields; blank cells leave a field as is."""
    fields = sorted({f for values in records.values() for f in values})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Id", *fields])
    for rec_id, values in records.items():
        row = [rec_id]
        for f in fields:
            if f not in values:
                row.append("")
            else:
                value = values[f]
                row.append(BULK_NULL if value is None else value)
        writer.writerow(row)
    return buf.getvalue()


def bulk_upload_and_close(conn: Connection, job_id: str, csv_text: str) -> None:
    conn.request(
        "PUT",
        f"jobs/ingest/{job_id}/batches",
        data=csv_text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    conn.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})


def bulk_state(conn: Connection, job_id: str) -> str:
    return str(conn.request("GET", f"jobs/ingest/{job_id}").json().get("state"))  # type: ignore[attr-defined]


def bulk_abort(conn: Connection, job_id: str) -> None:
    conn.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "Aborted"})


def bulk_wait(
    conn: Connection,
    job_id: str,
    sleep: Callable[[float], None],
    interval: float,
    max_polls: int,
    on_poll: Callable[[str], None] | None = None,
) -> str:
    """Poll until the job is JobComplete, Failed or Aborted; returns that state."""
    state = "UploadComplete"
    for _ in range(max_polls):
        state = bulk_state(conn, job_id)
        if on_poll is not None:
            on_poll(state)
        if state in ("JobComplete", "Failed", "Aborted"):
            return state
        sleep(interval)
    return state


def bulk_results(conn: Connection, job_id: str) -> dict[str, RecordOutcome]:
    """Successful and failed records of a finished job, by sf__Id / Id (never by row order)."""
    out: dict[str, RecordOutcome] = {}
    for kind in ("successfulResults", "failedResults"):
        resp = conn.request("GET", f"jobs/ingest/{job_id}/{kind}", headers={"Accept": "text/csv"})
        body = resp.content.decode()  # type: ignore[attr-defined]
        for row in csv.DictReader(io.StringIO(body)):
            rec_id = row.get("sf__Id") or row.get("Id")
            if not rec_id:
                log.warning("bulk %s row without id ignored in job %s", kind, job_id)
                continue
            if kind == "successfulResults":
                out[norm_id(rec_id)] = RecordOutcome(True)
            else:
                code, _, message = (row.get("sf__Error") or "UNKNOWN_ERROR").partition(":")
                out[norm_id(rec_id)] = RecordOutcome(False, code.strip(), message.strip())
    return out
