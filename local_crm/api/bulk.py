"""Bulk API 2.0: ingest jobs (CSV upload, insert/update/delete/hardDelete, per-row results) and
query jobs (results paged by locator), with Salesforce's job states."""

from __future__ import annotations

import base64
import csv
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local_crm.api.base import ApiError, Request, Response, method_not_allowed
from local_crm.api.query import MAX_OPEN_CURSORS
from local_crm.db import (
    CrmStore,
    RecordError,
    RecordResult,
    format_datetime,
    get_object,
    make_id,
    to_id18,
)
from local_crm.schema import OBJECTS, SObject
from local_crm.soql import CompiledQuery, SoqlError, compile_soql

BULK_CHUNK = 2000  # records per store call while a bulk ingest job runs
BULK_DEFAULT_PAGE_ROWS = 1_000_000  # rows per bulk query results page without maxRecords
# A Bulk upload value may exceed the csv module's 128 KiB default: its row must fail on its own
# with STRING_TOO_LONG (the store's field lengths), not break the whole upload.
MAX_UPLOAD_VALUE = 64 * 1024 * 1024
_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_INGEST_OPERATIONS = ("insert", "update", "delete", "hardDelete")
csv.field_size_limit(max(csv.field_size_limit(), MAX_UPLOAD_VALUE))


class BulkRoutes:
    """Bulk 2.0 ingest and query jobs; mixed into `server.CrmApi`."""

    def _job_row(self, job_id: str, kind: str) -> dict[str, Any]:
        with self.store.connection() as con:
            cur = con.execute("SELECT * FROM _bulk_job WHERE id = ? AND kind = ?", (job_id, kind))
            row = cur.fetchone()
            cols = [d[0] for d in cur.description]
        if row is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return dict(zip(cols, row, strict=True))

    def _set_job(self, job_id: str, **values: Any) -> None:
        values["system_modstamp"] = format_datetime(self.store.clock.now())
        with self.store.connection() as con, con:
            con.execute(
                "UPDATE _bulk_job SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE id = ?",
                [*values.values(), job_id],
            )

    def _job_info(self, req: Request, job: dict[str, Any], full: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job["id"],
            "operation": job["operation"],
            "object": job["object"],
            "createdById": job["created_by"],
            "createdDate": job["created_date"],
            "systemModstamp": job["system_modstamp"],
            "state": job["state"],
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(req.version),
            "lineEnding": job["line_ending"],
            "columnDelimiter": job["column_delimiter"],
        }
        if job["kind"] == "ingest":
            info["contentUrl"] = f"services/data/v{req.version}/jobs/ingest/{job['id']}/batches"
        if full:
            info["jobType"] = "V2Ingest" if job["kind"] == "ingest" else "V2Query"
            info["numberRecordsProcessed"] = job["processed"]
            info["retries"] = 0
            info["totalProcessingTime"] = 0
            if job["kind"] == "ingest":
                info["numberRecordsFailed"] = job["failed"]
                info["apiActiveProcessingTime"] = 0
                info["apexProcessingTime"] = 0
            if job["error_message"]:
                info["errorMessage"] = job["error_message"]
        return info

    def _create_job(
        self,
        req: Request,
        kind: str,
        obj_name: str | None,
        operation: str,
        query: str | None,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in _DELIMITERS:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
        if line_ending not in ("LF", "CRLF"):
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid line ending: {line_ending}")
        job_id = _job_id(self.store, "750")
        now = format_datetime(self.store.clock.now())
        with self.store.connection() as con, con:
            con.execute(
                "INSERT INTO _bulk_job(id, kind, object, operation, query, state, created_by, "
                "created_date, system_modstamp, column_delimiter, line_ending) "
                "VALUES (?, ?, ?, ?, ?, 'Open', ?, ?, ?, ?, ?)",
                (
                    job_id,
                    kind,
                    obj_name,
                    operation,
                    query,
                    req.user_id,
                    now,
                    now,
                    delimiter,
                    line_ending,
                ),
            )
        return self._job_row(job_id, kind)

    def _ingest(self, req: Request, parts: list[str]) -> Response:
        m = req.method
        if not parts:
            if m == "POST":
                body = req.json() or {}
                obj_name = body.get("object")
                if not obj_name or obj_name not in OBJECTS:
                    raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid object: {obj_name}")
                operation = body.get("operation")
                if operation not in _INGEST_OPERATIONS:
                    raise ApiError(
                        400,
                        "INVALIDJOB",
                        f"InvalidJob : The local CRM does not support operation {operation}",
                    )
                job = self._create_job(req, "ingest", obj_name, operation, None, body)
                return Response(200, self._job_info(req, job, full=False))
            if m == "GET":
                with self.store.connection() as con:
                    ids = [
                        r[0]
                        for r in con.execute(
                            "SELECT id FROM _bulk_job WHERE kind = 'ingest' ORDER BY id"
                        )
                    ]
                jobs = [self._job_info(req, self._job_row(i, "ingest"), full=False) for i in ids]
                return Response(200, {"done": True, "records": jobs, "nextRecordsUrl": None})
            raise method_not_allowed(m, "GET, POST")
        job = self._job_row(parts[0], "ingest")
        if len(parts) == 1:
            if m == "GET":
                return Response(200, self._job_info(req, job, full=True))
            if m == "DELETE":
                if job["state"] not in ("UploadComplete", "JobComplete", "Aborted", "Failed"):
                    raise ApiError(
                        400, "INVALIDSTATUS", "Job must be closed before it can be deleted"
                    )
                self._delete_job(job["id"])
                return Response(204)
            if m == "PATCH":
                state = (req.json() or {}).get("state")
                if state == "UploadComplete" and job["state"] == "Open":
                    self._set_job(job["id"], state="UploadComplete")
                    info = self._job_info(req, self._job_row(job["id"], "ingest"), full=False)
                    self._run_ingest(req, job["id"])
                    return Response(200, info)
                if state == "Aborted" and job["state"] in ("Open", "UploadComplete", "InProgress"):
                    self._set_job(job["id"], state="Aborted")
                    return Response(
                        200, self._job_info(req, self._job_row(job["id"], "ingest"), full=False)
                    )
                raise ApiError(
                    400, "INVALIDSTATUS", f"Invalid state transition from {job['state']} to {state}"
                )
            raise method_not_allowed(m, "GET, PATCH, DELETE")
        sub = parts[1].lower()  # Salesforce matches these path segments case-insensitively
        if sub == "batches" and len(parts) == 2:
            if m != "PUT":
                raise method_not_allowed(m, "PUT")
            if job["state"] != "Open":
                raise ApiError(
                    409,
                    "INVALIDSTATUS",
                    f"Job is in state {job['state']}; data can be uploaded only while Open",
                )
            text = req.body.decode("utf-8-sig")
            rows = max(
                0,
                len(
                    list(
                        csv.reader(
                            io.StringIO(text), delimiter=_DELIMITERS[job["column_delimiter"]]
                        )
                    )
                )
                - 1,
            )
            with self.store.connection() as con, con:
                seq = con.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM _bulk_data WHERE job_id = ?",
                    (job["id"],),
                ).fetchone()[0]
                con.execute("INSERT INTO _bulk_data VALUES (?, ?, ?)", (job["id"], seq, text))
                con.execute(
                    "UPDATE _bulk_job SET total_rows = total_rows + ? WHERE id = ?",
                    (rows, job["id"]),
                )
            return Response(201, b"", content_type="text/plain", records=rows)
        if sub in ("successfulresults", "failedresults", "unprocessedrecords") and len(parts) == 2:
            if m != "GET":
                raise method_not_allowed(m, "GET")
            kind = {
                "successfulresults": "success",
                "failedresults": "failed",
                "unprocessedrecords": "unprocessed",
            }[sub]
            with self.store.connection() as con:
                chunks = [
                    r[0]
                    for r in con.execute(
                        "SELECT body FROM _bulk_result WHERE job_id = ? AND kind = ? ORDER BY seq",
                        (job["id"], kind),
                    )
                ]
            text = chunks[0] if chunks else ""
            text += "".join(_strip_header(c) for c in chunks[1:])
            n = max(0, text.count("\n") - 1) if text else 0
            return Response(200, text.encode("utf-8"), content_type="text/csv", records=n)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def _delete_job(self, job_id: str) -> None:
        with self._cursor_lock:
            cursor = self._query_jobs.pop(job_id, None)
        if cursor is not None:
            cursor.close()
        with self.store.connection() as con, con:
            for table in ("_bulk_data", "_bulk_result"):
                con.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            con.execute("DELETE FROM _bulk_job WHERE id = ?", (job_id,))

    def _run_ingest(self, req: Request, job_id: str) -> None:
        """Process an uploaded job synchronously: InProgress -> JobComplete | Failed."""
        job = self._job_row(job_id, "ingest")
        self._set_job(job_id, state="InProgress")
        obj = get_object(job["object"])
        delim = _DELIMITERS[job["column_delimiter"]]
        header, rows = self._job_rows(job_id, delim)
        failure = self.faults.bulk_job_failure(req.api_path)
        limit = len(rows) if failure is None else min(failure.processed_rows, len(rows))
        out = {k: _CsvOut(k, header, delim) for k in ("success", "failed", "unprocessed")}
        failed = 0
        bad_cols = [c for c in header if c not in obj.field_names]
        for start in range(0, limit, BULK_CHUNK):
            chunk = rows[start : min(start + BULK_CHUNK, limit)]
            if bad_cols:
                err = RecordError(
                    "INVALID_FIELD",
                    f"No such column '{bad_cols[0]}' on entity '{obj.name}'",
                    (bad_cols[0],),
                )
                results = [RecordResult(None, False, [err]) for _ in chunk]
            else:
                results = self._ingest_chunk(req, job, obj, header, chunk)
            for raw, res in zip(chunk, results, strict=True):
                if res.success:
                    out["success"].add([res.id or "", "true" if res.created else "false", *raw])
                else:
                    failed += 1
                    out["failed"].add([res.id or "", _bulk_error(res.errors[0]), *raw])
        for raw in rows[limit:]:
            out["unprocessed"].add(list(raw))
        with self.store.connection() as con, con:
            for kind, w in out.items():
                con.execute(
                    "INSERT INTO _bulk_result VALUES (?, ?, 1, ?)", (job_id, kind, w.text())
                )
        if failure is not None:
            self._set_job(
                job_id,
                state="Failed",
                processed=limit,
                failed=failed,
                error_message="InternalServerError : the job failed while processing; "
                "retry the unprocessed records",
            )
        else:
            self._set_job(job_id, state="JobComplete", processed=limit, failed=failed)

    def _job_rows(self, job_id: str, delim: str) -> tuple[list[str], list[list[str]]]:
        header: list[str] = []
        rows: list[list[str]] = []
        with self.store.connection() as con:
            bodies = [
                r[0]
                for r in con.execute(
                    "SELECT body FROM _bulk_data WHERE job_id = ? ORDER BY seq", (job_id,)
                )
            ]
        for body in bodies:
            reader = csv.reader(io.StringIO(body), delimiter=delim)
            h = next(reader, [])
            if header and h != header:
                raise ApiError(
                    400, "INVALIDBATCH", "All uploads of a job must have the same header"
                )
            header = h
            rows.extend(r for r in reader if r)
        return header, rows

    def _ingest_chunk(
        self, req: Request, job: dict, obj: SObject, header: list[str], chunk: list[list[str]]
    ) -> list[RecordResult]:
        records: list[dict[str, Any]] = []
        for raw in chunk:
            rec: dict[str, Any] = {}
            for col, value in zip(header, raw, strict=False):
                if value == "":
                    continue  # empty = leave unchanged; `#N/A` sets null (Bulk 2.0 rule)
                rec[col] = None if value == "#N/A" else value
            records.append(rec)
        op = job["operation"]
        path = f"jobs/ingest/{job['id']}"
        if op == "insert":
            forced = self.faults.record_errors("PATCH", path, [None] * len(records))
            return self.store.create(obj.name, records, job["created_by"], False, forced)
        ids = []
        for r in records:
            try:
                ids.append(to_id18(str(r.get("Id", ""))))
            except ValueError:
                ids.append(None)
        forced = self.faults.record_errors("PATCH", path, ids)
        if op == "update":
            return self._update(path, obj, records, ids, job["created_by"], False, forced)
        return self.store.delete(obj.name, [str(r.get("Id", "")) for r in records], False, forced)

    def _bulk_query(self, req: Request, parts: list[str]) -> Response:
        m = req.method
        if not parts:
            if m != "POST":
                raise method_not_allowed(m, "POST")
            body = req.json() or {}
            operation = body.get("operation", "query")
            if operation not in ("query", "queryAll"):
                raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
            text = body.get("query") or ""
            try:
                q = compile_soql(
                    text, include_deleted=operation == "queryAll", now=self.store.clock.now()
                )
            except SoqlError as err:
                raise ApiError(400, err.error_code, err.message) from None
            if q.is_count:
                raise ApiError(
                    400, "INVALIDJOB", "InvalidJob : Aggregate queries are not supported"
                )
            job = self._create_job(req, "query", q.object.name, operation, text, body)
            info = self._job_info(req, job, full=False)
            info["state"] = "UploadComplete"
            self._run_query_job(job, q)
            return Response(200, info)
        job = self._job_row(parts[0], "query")
        if len(parts) == 1:
            if m == "GET":
                return Response(200, self._job_info(req, job, full=True))
            if m == "PATCH":
                state = (req.json() or {}).get("state")
                if state != "Aborted" or job["state"] not in ("UploadComplete", "InProgress"):
                    raise ApiError(
                        400,
                        "INVALIDSTATUS",
                        f"Invalid state transition from {job['state']} to {state}",
                    )
                self._set_job(job["id"], state="Aborted")
                with self._cursor_lock:
                    aborted = self._query_jobs.pop(job["id"], None)
                if aborted is not None:
                    aborted.close()
                return Response(
                    200, self._job_info(req, self._job_row(job["id"], "query"), full=False)
                )
            if m == "DELETE":
                self._delete_job(job["id"])
                return Response(204)
            raise method_not_allowed(m, "GET, PATCH, DELETE")
        if parts[1] == "results" and len(parts) == 2 and m == "GET":
            if job["state"] != "JobComplete":
                raise ApiError(
                    400,
                    "INVALIDSTATUS",
                    f"Job is in state {job['state']}; results are available once JobComplete",
                )
            return self._query_results(req, job)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def _run_query_job(self, job: dict[str, Any], q: CompiledQuery) -> None:
        """Open the job's read snapshot, count its rows and keep a cursor for the result pages.

        Deliberate difference from Salesforce: results are not materialised. The job holds a
        read transaction (a WAL snapshot) and each results page formats the next rows straight
        from SQLite, so a page always sees the data as of job completion.
        """
        self._set_job(job["id"], state="InProgress")
        self._expire_cursors()
        sql, params = q.csv_sql(_DELIMITERS[job["column_delimiter"]])
        con = self.store.connect()
        try:
            con.execute("BEGIN")  # the snapshot every page of this job reads
            total = int(con.execute(q.count_sql, q.count_params).fetchone()[0])
            cursor = QueryJob(con, con.execute(sql, params), sql, params, time.monotonic())
        except Exception:
            con.close()
            raise
        with self._cursor_lock:
            self._query_jobs[job["id"]] = cursor
            while len(self._query_jobs) > MAX_OPEN_CURSORS:
                _, old = self._query_jobs.popitem(last=False)
                old.close()
        self._set_job(job["id"], state="JobComplete", processed=total, total_rows=total)

    def _query_results(self, req: Request, job: dict[str, Any]) -> Response:
        max_records = int(req.param("maxRecords") or 0) or BULK_DEFAULT_PAGE_ROWS
        locator = req.param("locator") or ""
        try:
            offset = int(base64.b64decode(locator).decode()) if locator else 0
        except ValueError:
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
        delim = _DELIMITERS[job["column_delimiter"]]
        q = compile_soql(
            job["query"], include_deleted=job["operation"] == "queryAll", now=self.store.clock.now()
        )
        with self._cursor_lock:
            cursor = self._query_jobs.get(job["id"])
        reread = cursor is None
        if cursor is None:
            # Snapshot gone (all pages served, idle expiry, restart): re-read the live data.
            sql, params = q.csv_sql(delim)
            cursor = QueryJob(self.store.connect(), None, sql, params, time.monotonic())
        with cursor.lock:
            lines = cursor.page(offset, max_records)
        end = offset + len(lines)
        done = end >= job["total_rows"] or len(lines) < max_records
        if done or reread:
            with self._cursor_lock:
                self._query_jobs.pop(job["id"], None)
            cursor.close()
        eol = _eol(job)
        header = delim.join(f'"{f.name}"' for f in q.fields)
        body = eol.join([header, *lines]) + eol
        next_locator = "null" if done else base64.b64encode(str(end).encode()).decode()
        return Response(
            200,
            body.encode("utf-8"),
            content_type="text/csv",
            headers={"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(lines))},
            records=len(lines),
        )


@dataclass
class QueryJob:
    """A bulk query job's result cursor: one read transaction, CSV lines formatted by SQLite."""

    con: Any
    cur: Any  # None until the first page when re-reading
    sql: str
    params: tuple[Any, ...]
    last_used: float
    position: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, offset: int, n: int) -> list[str]:
        """Lines `offset` .. `offset + n` (a retried or skipped page re-runs the query)."""
        if self.cur is None or offset != self.position:
            self.cur = self.con.execute(
                f"SELECT * FROM ({self.sql}) LIMIT -1 OFFSET ?", (*self.params, offset)
            )
            self.position = offset
        lines = [row[0] for row in self.cur.fetchmany(n)]
        self.position += len(lines)
        self.last_used = time.monotonic()
        return lines

    def close(self) -> None:
        try:
            self.con.rollback()
        finally:
            self.con.close()


def _job_id(store: CrmStore, prefix: str) -> str:
    """Bulk job ids share one counter in `_meta` (prefix 750, as Salesforce's job ids)."""
    with store.connection() as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT value FROM _meta WHERE key = 'seq:_bulk_job'").fetchone()
            n = int(row[0]) if row else 1
            con.execute(
                "INSERT INTO _meta(key, value) VALUES ('seq:_bulk_job', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(n + 1),),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return make_id(prefix, n)


def _eol(job: dict[str, Any]) -> str:
    return "\r\n" if job["line_ending"] == "CRLF" else "\n"


def _strip_header(text: str) -> str:
    return text.split("\n", 1)[1] if "\n" in text else ""


class _CsvOut:
    """Result file of an ingest job: sf__ columns then the uploaded columns."""

    def __init__(self, kind: str, header: list[str], delim: str):
        self.buf = io.StringIO()
        self.w = csv.writer(self.buf, delimiter=delim, lineterminator="\n")
        lead = {"success": ["sf__Id", "sf__Created"], "failed": ["sf__Id", "sf__Error"]}.get(
            kind, []
        )
        self.w.writerow(lead + header)

    def add(self, row: list[str]) -> None:
        self.w.writerow(row)

    def text(self) -> str:
        return self.buf.getvalue()


def _bulk_error(err: RecordError) -> str:
    """Bulk 2.0's sf__Error text: `CODE:message:fields --`."""
    return f"{err.status_code}:{err.message}:{' '.join(err.fields)} --"
