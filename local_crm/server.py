"""The local CRM's HTTP API: the subset of Salesforce's REST, Collections and Bulk 2.0 APIs the
product uses, with Salesforce's URLs, status codes and error shapes, over a `CrmStore`.

Run it in-process for tests and the demo (`start_in_process`) or standalone (`serve`). The
production connector (simple-salesforce) talks to it through `local_session`, a requests session
that routes simple-salesforce's `https://` URLs to this plain-HTTP loopback server.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import itertools
import json
import logging
import re
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from local_crm.db import (
    CrmStore,
    RecordError,
    RecordResult,
    format_datetime,
    get_object,
    make_id,
    object_for_id,
    to_id18,
)
from local_crm.faults import FaultInjector, RequestFault
from local_crm.schema import OBJECTS, SObject
from local_crm.soql import CompiledQuery, SoqlError, compile_soql, json_value

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 2000
DEFAULT_API_LIMIT = 100_000
MAX_COLLECTION = 200
MAX_COLLECTION_RETRIEVE = 2000  # sObject Collections retrieve by POST; GET is capped by URL length
BULK_CHUNK = 2000  # records per store call while a bulk ingest job runs
BULK_DEFAULT_PAGE_ROWS = 1_000_000  # rows per bulk query results page without maxRecords
CURSOR_IDLE_SECONDS = 15 * 60  # Salesforce expires idle query locators after 15 minutes
MAX_OPEN_CURSORS = 50
ORG_ID = make_id("00D", 1)
# A Bulk upload value may exceed the csv module's 128 KiB default: its row must fail on its own
# with STRING_TOO_LONG (the store's field lengths), not break the whole upload.
MAX_UPLOAD_VALUE = 64 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), MAX_UPLOAD_VALUE))

# Credentials start_in_process/serve register when the store has none (documented in README).
DEFAULT_CLIENT_ID = "books-local-client"
DEFAULT_CLIENT_SECRET = "books-local-secret"
DEFAULT_USERNAME = "integration@books.local"
DEFAULT_PASSWORD = "books-local-password"

_VERSION_RE = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_INGEST_OPERATIONS = ("insert", "update", "delete", "hardDelete")


class ApiError(Exception):
    """An error response in Salesforce's REST shape `[{"message", "errorCode", ...}]`."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> list[dict[str, Any]]:
        out: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            out["fields"] = self.fields
        return [out]


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes/str for CSV
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    records: int = 0


@dataclass
class _Cursor:
    """An open query locator: a read transaction (snapshot) on its own connection."""

    con: Any
    cur: Any
    query: CompiledQuery
    total: int
    fetched: int
    include_deleted: bool
    user_id: str
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        try:
            self.con.rollback()
        finally:
            self.con.close()


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    version: str = ""
    api_path: str = ""
    user_id: str | None = None
    token: str | None = None
    client_id: str | None = None  # the connected app: the session's, or the token request's
    received_s: float = 0.0  # arrival on the API's monotonic clock

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected content: {exc}") from None

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


class CrmApi:
    """Routes one request to the store; independent of the HTTP plumbing."""

    def __init__(
        self,
        store: CrmStore,
        base_url: str,
        faults: FaultInjector,
        page_size: int = DEFAULT_PAGE_SIZE,
        api_limit: int = DEFAULT_API_LIMIT,
    ):
        self.store = store
        self.base_url = base_url
        self.faults = faults
        self.page_size = page_size
        self.api_limit = api_limit
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._query_jobs: OrderedDict[str, _QueryJob] = OrderedDict()
        self._cursor_lock = threading.Lock()
        self._locator_seq = itertools.count(1)
        self._signing_key = secrets.token_bytes(32)
        # When each request arrives, for the request log; a test swaps in the fake clock its
        # client sleeps on, to check every request against the Retry-After it was given.
        self.monotonic: Callable[[], float] = time.monotonic

    # -- entry point

    def handle(self, req: _Request) -> Response | None:
        """Handle a request; None means drop the connection (injected fault)."""
        req.received_s = self.monotonic()
        started = time.monotonic()
        resp: Response | None
        usage = 0
        try:
            resp, usage = self._dispatch(req)
        except ApiError as err:
            resp = Response(err.status, err.body(), headers=dict(err.headers))
        except Exception:  # a bug in the CRM itself: report like Salesforce does, and log it
            log.exception("local CRM failed on %s %s", req.method, req.path)
            resp = Response(
                500,
                [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}],
            )
        if resp is not None:
            if not usage:
                usage = self._usage(increment=False)
            resp.headers["Sforce-Limit-Info"] = f"api-usage={usage}/{self.api_limit}"
        self._log(req, resp, time.monotonic() - started)
        return resp

    def _dispatch(self, req: _Request) -> tuple[Response | None, int]:
        if req.path.rstrip("/") == "/services/oauth2/token":
            req.api_path = "oauth2/token"
            req.client_id = _form_client_id(req)  # so a faulted login is logged per client
            faulted, fault = self._request_faults(req)
            if faulted:
                return fault, 0
            if req.method != "POST":
                raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed. Allowed: POST")
            return self._token(req), 0
        if req.path.rstrip("/") == "/services/data":
            return Response(
                200, [{"label": "Local CRM", "url": "/services/data/v62.0", "version": "62.0"}]
            ), 0
        m = _VERSION_RE.match(req.path)
        if not m:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        req.version = m.group(1)
        req.api_path = (m.group(2) or "/").strip("/")
        self._authenticate(req)
        usage = self._usage(increment=True)
        if usage > self.api_limit:
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        faulted, fault = self._request_faults(req)
        if faulted:
            return fault, usage
        return self._route(req), usage

    def _request_faults(self, req: _Request) -> tuple[bool, Response | None]:
        """(True, response) if an injected fault answers this call; response None = drop."""
        for f in self.faults.on_request(req.method, req.api_path):
            if f.kind == "slow":
                time.sleep(f.delay)
                continue
            if f.kind == "drop":
                return True, None
            if f.kind == "expired_session" and req.token:
                self._revoke(req.token)
            return True, _fault_response(f)
        return False, None

    # -- auth

    def _token(self, req: _Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8")).items()}
        grant = form.get("grant_type", "")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        req.client_id = client_id
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, client_secret = (
                    base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                )
            except (ValueError, UnicodeDecodeError):
                return _oauth_error("invalid_client", "invalid client credentials")
        if grant not in ("password", "client_credentials"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if not client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        run_as = self.store.check_client(client_id, client_secret or "")
        if run_as is None:
            if grant == "password" and not self._client_known(client_id):
                return _oauth_error("invalid_client_id", "client identifier invalid")
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "password":
            user_id = self.store.check_password(form.get("username", ""), form.get("password", ""))
            if user_id is None:
                return _oauth_error("invalid_grant", "authentication failure")
        else:
            user_id = run_as
        token = self.issue_token(user_id, client_id)
        issued = str(int(self.store.clock.now().timestamp() * 1000))
        signature = base64.b64encode(
            hmac.new(self._signing_key, f"{user_id}{issued}".encode(), hashlib.sha256).digest()
        ).decode()
        return Response(
            200,
            {
                "access_token": token,
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{ORG_ID}/{user_id}",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": signature,
            },
        )

    def _client_known(self, client_id: str) -> bool:
        with self.store.connection() as con:
            return (
                con.execute(
                    "SELECT 1 FROM _connected_app WHERE client_id = ?", (client_id,)
                ).fetchone()
                is not None
            )

    def issue_token(self, user_id: str, client_id: str | None = None) -> str:
        """A session id for a user (persisted, so sessions survive a server restart)."""
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        with self.store.connection() as con, con:
            con.execute(
                "INSERT INTO _session(token, user_id, client_id, issued_at) VALUES (?, ?, ?, ?)",
                (token, user_id, client_id, format_datetime(self.store.clock.now())),
            )
        return token

    def _revoke(self, token: str) -> None:
        with self.store.connection() as con, con:
            con.execute("UPDATE _session SET revoked = 1 WHERE token = ?", (token,))

    def _authenticate(self, req: _Request) -> None:
        auth = req.headers.get("Authorization", "")
        token = None
        for scheme in ("Bearer ", "OAuth "):
            if auth.startswith(scheme):
                token = auth[len(scheme) :].strip()
        row = None
        if token:
            with self.store.connection() as con:
                row = con.execute(
                    "SELECT user_id, client_id FROM _session WHERE token = ? AND revoked = 0",
                    (token,),
                ).fetchone()
        if row is None:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        req.token, req.user_id, req.client_id = token, row[0], row[1]

    # -- limits and log

    def _usage(self, increment: bool) -> int:
        key = f"api_usage:{self.store.clock.today().isoformat()}"
        with self.store.connection() as con, con:
            if increment:
                con.execute(
                    "INSERT INTO _meta(key, value) VALUES (?, '1') ON CONFLICT(key) "
                    "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
                    (key,),
                )
            row = con.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _log(self, req: _Request, resp: Response | None, seconds: float) -> None:
        status = resp.status if resp is not None else 0
        error_code = None
        if resp is not None and status >= 400 and isinstance(resp.body, list) and resp.body:
            error_code = resp.body[0].get("errorCode")
        elif resp is not None and status >= 400 and isinstance(resp.body, dict):
            error_code = resp.body.get("error")
        with self.store.connection() as con, con:
            con.execute(
                "INSERT INTO _request_log(at, method, path, query, status, records, is_write, "
                "user_id, error_code, duration_ms, client_id, retry_after, received_s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    format_datetime(self.store.clock.now()),
                    req.method,
                    req.path,
                    "&".join(f"{k}={v[0]}" for k, v in req.query.items()) or None,
                    status,
                    resp.records if resp is not None else 0,
                    int(_is_write(req)),
                    req.user_id,
                    error_code,
                    round(seconds * 1000, 3),
                    req.client_id,
                    _retry_after(resp),
                    req.received_s,
                ),
            )
        log.debug("%s %s -> %s in %.3fs", req.method, req.path, status, seconds)

    # -- routing

    def _route(self, req: _Request) -> Response:
        parts = req.api_path.split("/") if req.api_path else []
        head = parts[0] if parts else ""
        m = req.method
        if head in ("query", "queryAll"):
            if m != "GET":
                raise _method_not_allowed(m, "GET")
            return self._query(req, parts, include_deleted=head == "queryAll")
        if head == "sobjects":
            return self._sobjects(req, parts[1:])
        if parts[:2] == ["composite", "sobjects"] and len(parts) == 2:
            return self._collections(req)
        if parts[:2] == ["composite", "sobjects"] and len(parts) == 3:
            return self._collections_retrieve(req, parts[2])
        if head == "jobs" and len(parts) >= 2 and parts[1] == "ingest":
            return self._ingest(req, parts[2:])
        if head == "jobs" and len(parts) >= 2 and parts[1] == "query":
            return self._bulk_query(req, parts[2:])
        if head == "limits" and m == "GET":
            used = self._usage(increment=False)
            return Response(
                200,
                {"DailyApiRequests": {"Max": self.api_limit, "Remaining": self.api_limit - used}},
            )
        if not parts:
            return Response(
                200,
                {
                    "sobjects": f"/services/data/v{req.version}/sobjects",
                    "query": f"/services/data/v{req.version}/query",
                },
            )
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    # -- query / queryAll

    def _query(self, req: _Request, parts: list[str], include_deleted: bool) -> Response:
        size = self.page_size
        options = req.headers.get("Sforce-Query-Options", "")
        mm = re.search(r"batchSize=(\d+)", options)
        if mm:
            size = max(200, min(2000, int(mm.group(1))))
        if len(parts) == 2:  # /query/<locator>-<offset>
            return self._query_more(req, parts[1], size)
        if len(parts) != 1:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        self._expire_cursors()
        text = req.param("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "query parameter q is required")
        try:
            q = compile_soql(text, include_deleted=include_deleted, now=self.store.clock.now())
        except SoqlError as err:
            raise ApiError(400, err.error_code, err.message) from None
        con = self.store.connect()
        try:
            con.execute("BEGIN")  # one read snapshot for the count and every page (WAL)
            total = int(con.execute(q.count_sql, q.count_params).fetchone()[0])
            if q.is_count:
                con.rollback()
                con.close()
                return Response(200, {"totalSize": total, "done": True, "records": []})
            cur = con.execute(q.sql, q.params)
        except Exception:
            con.close()
            raise
        cursor = _Cursor(
            con, cur, q, total, 0, include_deleted, req.user_id or "", time.monotonic()
        )
        locator = make_id("01g", next(self._locator_seq))
        return self._page(req, locator, cursor, size, first=True)

    def _query_more(self, req: _Request, token: str, size: int) -> Response:
        locator, _, offset = token.rpartition("-")
        self._expire_cursors()
        with self._cursor_lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) != cursor.fetched:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(req, locator, cursor, size, first=False)

    def _page(
        self, req: _Request, locator: str, cursor: _Cursor, size: int, first: bool
    ) -> Response:
        with cursor.lock:
            rows = cursor.cur.fetchmany(size)
            cursor.fetched += len(rows)
            cursor.last_used = time.monotonic()
            done = len(rows) < size or cursor.fetched >= cursor.total
            obj = cursor.query.object
            prefix = f"/services/data/v{req.version}/sobjects/{obj.name}/"
            records = []
            for row in rows:
                rec: dict[str, Any] = {"attributes": {"type": obj.name, "url": prefix + row[0]}}
                for f, value in zip(cursor.query.fields, row[1:], strict=True):
                    rec[f.name] = json_value(f, value)
                records.append(rec)
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done}
        with self._cursor_lock:
            if done:
                self._cursors.pop(locator, None)
                cursor.close()
            else:
                self._cursors[locator] = cursor
                self._cursors.move_to_end(locator)
                kind = "queryAll" if cursor.include_deleted else "query"
                body["nextRecordsUrl"] = (
                    f"/services/data/v{req.version}/{kind}/{locator}-{cursor.fetched}"
                )
                while len(self._cursors) > MAX_OPEN_CURSORS:
                    _, old = self._cursors.popitem(last=False)
                    old.close()
        body["records"] = records
        return Response(200, body, records=len(records))

    def _expire_cursors(self) -> None:
        now = time.monotonic()
        with self._cursor_lock:
            for key in [
                k for k, c in self._cursors.items() if now - c.last_used > CURSOR_IDLE_SECONDS
            ]:
                self._cursors.pop(key).close()
            for key in [
                k for k, c in self._query_jobs.items() if now - c.last_used > CURSOR_IDLE_SECONDS
            ]:
                self._query_jobs.pop(key).close()

    def close(self) -> None:
        with self._cursor_lock:
            for c in [*self._cursors.values(), *self._query_jobs.values()]:
                c.close()
            self._cursors.clear()
            self._query_jobs.clear()

    # -- sobjects

    def _sobjects(self, req: _Request, parts: list[str]) -> Response:
        m = req.method
        if not parts:
            if m != "GET":
                raise _method_not_allowed(m, "GET")
            return Response(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": MAX_COLLECTION,
                    "sobjects": [_describe_short(o) for o in OBJECTS.values()],
                },
            )
        obj = _object_or_404(parts[0])
        if len(parts) == 1:
            if m == "GET":
                return Response(200, {"objectDescribe": _describe_short(obj), "recentItems": []})
            if m == "POST":
                results = self._create(req, obj, [req.json() or {}])
                r = results[0]
                if not r.success:
                    raise _record_api_error(r)
                return Response(201, r.as_json(), records=1)
            raise _method_not_allowed(m, "GET, POST")
        if len(parts) == 2 and parts[1] == "describe":
            if m != "GET":
                raise _method_not_allowed(m, "GET")
            return Response(200, describe(obj))
        if len(parts) != 2:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            rec_id = to_id18(parts[1])
        except ValueError:
            raise ApiError(
                404,
                "NOT_FOUND",
                "Provided external ID field does not exist or is not accessible: " + parts[1],
            ) from None
        if m == "GET":
            return self._get_record(req, obj, rec_id)
        if m == "PATCH":
            body = req.json()
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            forced = self.faults.record_errors(m, req.api_path, [rec_id])
            result = self.store.update(
                obj.name, [{**body, "Id": rec_id}], req.user_id, False, forced
            )[0]
            if not result.success:
                raise _record_api_error(result)
            return Response(204, records=1)
        if m == "DELETE":
            forced = self.faults.record_errors(m, req.api_path, [rec_id])
            result = self.store.delete(obj.name, [rec_id], False, forced)[0]
            if not result.success:
                raise _record_api_error(result)
            return Response(204, records=1)
        raise _method_not_allowed(m, "GET, PATCH, DELETE")

    def _get_record(self, req: _Request, obj: SObject, rec_id: str) -> Response:
        row = self.store.get(obj.name, rec_id) if rec_id.startswith(obj.key_prefix) else None
        if row is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if row.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        wanted = req.param("fields")
        names = _field_names(obj, wanted.split(",")) if wanted else obj.field_names
        return Response(200, self._record_json(req, obj, row, names), records=1)

    def _record_json(
        self, req: _Request, obj: SObject, row: dict[str, Any], names: list[str]
    ) -> dict[str, Any]:
        """One stored row as the API shows a record: attributes, then the asked fields."""
        rec: dict[str, Any] = {
            "attributes": {
                "type": obj.name,
                "url": f"/services/data/v{req.version}/sobjects/{obj.name}/{row['Id']}",
            }
        }
        if "IsArchived" in names and obj.name in ("Task", "Event"):
            cutoff = self.store.archive_cutoff()
            row["IsArchived"] = int(bool(row.get("ActivityDate")) and row["ActivityDate"] < cutoff)
        for n in names:
            rec[n] = json_value(obj.field(n), row[n])
        return rec

    def _create(
        self, req: _Request, obj: SObject, records: list[dict], all_or_none: bool = False
    ) -> list[RecordResult]:
        forced = self.faults.record_errors(req.method, req.api_path, [None] * len(records))
        clean = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
        return self.store.create(obj.name, clean, req.user_id, all_or_none, forced)

    # -- sObject Collections

    def _collections(self, req: _Request) -> Response:
        m = req.method
        if m == "DELETE":
            ids = [i for i in (req.param("ids") or "").split(",") if i]
            all_or_none = (req.param("allOrNone") or "false").lower() == "true"
            if not ids:
                raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
            _check_collection_size(len(ids))
            objs = {o.name for o in (object_for_id(i) for i in ids) if o is not None}
            if len(objs) != 1:
                raise ApiError(
                    400, "INVALID_ID_FIELD", "ids must all be valid ids of one sObject type"
                )
            forced = self.faults.record_errors(m, req.api_path, ids)
            results = self.store.delete(objs.pop(), ids, all_or_none, forced)
            return Response(200, [r.as_json() for r in results], records=len(ids))
        if m not in ("POST", "PATCH"):
            raise _method_not_allowed(m, "POST, PATCH, DELETE")
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(
                400, "JSON_PARSER_ERROR", 'Expected {"allOrNone": bool, "records": [...]}'
            )
        records = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
        _check_collection_size(len(records))
        if not records:
            return Response(200, [])
        types = set()
        for i, r in enumerate(records):
            t = (r.get("attributes") or {}).get("type") if isinstance(r, dict) else None
            if not t:
                raise ApiError(400, "INVALID_TYPE", f"Record {i}: attributes.type is required")
            types.add(t)
        if len(types) != 1:
            raise ApiError(
                400,
                "INVALID_TYPE",
                "The local CRM requires one sObject type per collection request",
            )
        obj = _object_or_404(types.pop(), status=400)
        if m == "POST":
            if any("Id" in r for r in records):
                raise ApiError(400, "INVALID_FIELD", "Records in a create call cannot have an Id")
            results = self._create(req, obj, records, all_or_none)
        else:
            ids = []
            for r in records:
                try:
                    ids.append(to_id18(str(r.get("Id"))))
                except ValueError:
                    ids.append(None)
            forced = self.faults.record_errors(m, req.api_path, ids)
            results = self._update(
                req.api_path, obj, records, ids, req.user_id, all_or_none, forced
            )
        return Response(200, [r.as_json() for r in results], records=len(records))

    def _update(
        self,
        api_path: str,
        obj: SObject,
        records: list[dict[str, Any]],
        ids: list[str | None],
        actor_id: str | None,
        all_or_none: bool,
        forced: dict[int, RecordError],
    ) -> list[RecordResult]:
        """store.update, except records a `silent_drop` fault picks: answered saved, not saved."""
        dropped = self.faults.silent_drops("PATCH", api_path, ids) - set(forced)
        if not dropped:
            return self.store.update(obj.name, records, actor_id, all_or_none, forced)
        kept = [i for i in range(len(records)) if i not in dropped]
        results = self.store.update(
            obj.name,
            [records[i] for i in kept],
            actor_id,
            all_or_none,
            {n: forced[i] for n, i in enumerate(kept) if i in forced},
        )
        out: list[RecordResult] = [RecordResult(ids[i], True) for i in range(len(records))]
        for n, i in enumerate(kept):
            out[i] = results[n]
        return out

    def _collections_retrieve(self, req: _Request, object_name: str) -> Response:
        """GET `?ids=&fields=` or POST `{"ids", "fields"}`: one entry per id, in the ids' order,
        null where the id is invalid, of another object, unknown or deleted."""
        obj = _object_or_404(object_name)
        if req.method == "GET":
            ids = [i for i in (req.param("ids") or "").split(",") if i]
            wanted = [f for f in (req.param("fields") or "").split(",") if f]
        elif req.method == "POST":
            body = req.json()
            ids = body.get("ids") if isinstance(body, dict) else None
            wanted = body.get("fields") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not isinstance(wanted, list):
                raise ApiError(400, "JSON_PARSER_ERROR", 'Expected {"ids": [...], "fields": [...]}')
        else:
            raise _method_not_allowed(req.method, "GET, POST")
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if not wanted:
            raise ApiError(400, "MISSING_ARGUMENT", "fields parameter is required")
        if len(ids) > MAX_COLLECTION_RETRIEVE:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"cannot retrieve more than {MAX_COLLECTION_RETRIEVE} records in one call",
            )
        names = _field_names(obj, [str(w) for w in wanted])
        wanted_ids: list[str | None] = []
        for i in ids:
            try:
                rec_id = to_id18(str(i))
            except ValueError:
                rec_id = None
            ok = rec_id is not None and rec_id.startswith(obj.key_prefix)
            wanted_ids.append(rec_id if ok else None)
        rows = self.store.get_many(obj.name, [i for i in wanted_ids if i is not None])
        out: list[dict[str, Any] | None] = []
        for rec_id in wanted_ids:
            row = rows.get(rec_id) if rec_id is not None else None
            if row is None or row.get("IsDeleted"):
                out.append(None)
            else:
                out.append(self._record_json(req, obj, row, names))
        return Response(200, out, records=len(ids))

    # -- Bulk API 2.0 ingest

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

    def _job_info(self, req: _Request, job: dict[str, Any], full: bool) -> dict[str, Any]:
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
        req: _Request,
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

    def _ingest(self, req: _Request, parts: list[str]) -> Response:
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
            raise _method_not_allowed(m, "GET, POST")
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
            raise _method_not_allowed(m, "GET, PATCH, DELETE")
        sub = parts[1].lower()  # Salesforce matches these path segments case-insensitively
        if sub == "batches" and len(parts) == 2:
            if m != "PUT":
                raise _method_not_allowed(m, "PUT")
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
                raise _method_not_allowed(m, "GET")
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

    def _run_ingest(self, req: _Request, job_id: str) -> None:
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
        self, req: _Request, job: dict, obj: SObject, header: list[str], chunk: list[list[str]]
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

    # -- Bulk API 2.0 query

    def _bulk_query(self, req: _Request, parts: list[str]) -> Response:
        m = req.method
        if not parts:
            if m != "POST":
                raise _method_not_allowed(m, "POST")
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
            raise _method_not_allowed(m, "GET, PATCH, DELETE")
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
            cursor = _QueryJob(con, con.execute(sql, params), sql, params, time.monotonic())
        except Exception:
            con.close()
            raise
        with self._cursor_lock:
            self._query_jobs[job["id"]] = cursor
            while len(self._query_jobs) > MAX_OPEN_CURSORS:
                _, old = self._query_jobs.popitem(last=False)
                old.close()
        self._set_job(job["id"], state="JobComplete", processed=total, total_rows=total)

    def _query_results(self, req: _Request, job: dict[str, Any]) -> Response:
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
            cursor = _QueryJob(self.store.connect(), None, sql, params, time.monotonic())
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
class _QueryJob:
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


# ---------------------------------------------------------------------------- helpers


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


def _is_write(req: _Request) -> bool:
    """Whether the call changes CRM data (what "zero write calls" tests count)."""
    p = req.api_path
    if req.method not in ("POST", "PATCH", "PUT", "DELETE"):
        return False
    return p.startswith("sobjects/") or p == "composite/sobjects" or p.startswith("jobs/ingest")


def _form_client_id(req: _Request) -> str | None:
    try:
        form = parse_qs(req.body.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    values = form.get("client_id")
    return values[0] if values else None


def _retry_after(resp: Response | None) -> float | None:
    value = resp.headers.get("Retry-After") if resp is not None else None
    return float(value) if value is not None else None


def _fault_response(f: RequestFault) -> Response:
    headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
    return Response(f.status, [{"message": f.message, "errorCode": f.error_code}], headers=headers)


def _oauth_error(error: str, description: str) -> Response:
    return Response(400, {"error": error, "error_description": description})


def _method_not_allowed(method: str, allowed: str) -> ApiError:
    return ApiError(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )


def _object_or_404(name: str, status: int = 404) -> SObject:
    if name not in OBJECTS:
        code = "NOT_FOUND" if status == 404 else "INVALID_TYPE"
        raise ApiError(
            status, code, f"The requested resource does not exist: sObject type '{name}'"
        )
    return OBJECTS[name]


def _field_names(obj: SObject, wanted: list[str]) -> list[str]:
    """The asked field names in the schema's spelling (the API is case-insensitive)."""
    lookup = {n.lower(): n for n in obj.field_names}
    names = []
    for w in wanted:
        name = lookup.get(w.strip().lower())
        if name is None:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{w.strip()}' on entity '{obj.name}'"
            )
        names.append(name)
    return names


def _check_collection_size(n: int) -> None:
    if n > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into "
            "this call",
        )


def _record_api_error(result: RecordResult) -> ApiError:
    """A single-record call's failure; an unknown record id is a 404, as in Salesforce."""
    err = result.errors[0]
    if err.status_code == "INVALID_CROSS_REFERENCE_KEY" and not err.fields:
        return ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return ApiError(400, err.status_code, err.message, list(err.fields))


def _describe_short(obj: SObject) -> dict[str, Any]:
    return {
        "name": obj.name,
        "label": obj.name.replace("__c", "").replace("_", " "),
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "createable": obj.createable,
        "updateable": obj.createable,
        "deletable": obj.createable,
        "queryable": True,
        "urls": {
            "sobject": f"/services/data/v62.0/sobjects/{obj.name}",
            "describe": f"/services/data/v62.0/sobjects/{obj.name}/describe",
        },
    }


def describe(obj: SObject) -> dict[str, Any]:
    """`sobjects/<Object>/describe` from schema.py."""
    fields = []
    for f in obj.fields:
        system = f.name in (
            "Id",
            "IsDeleted",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp",
            "IsArchived",
        )
        fields.append(
            {
                "name": f.name,
                "label": f.name.replace("__c", "").replace("_", " "),
                "type": f.type,
                "soapType": _soap_type(f.type),
                "length": f.max_length or 0,
                "custom": f.custom,
                "nillable": f.nillable,
                "createable": obj.createable and not system,
                "updateable": obj.createable and f.updateable and not system,
                "filterable": True,
                "sortable": True,
                "referenceTo": [f.reference_to] if f.reference_to else [],
                "relationshipName": None,
                "restrictedPicklist": bool(f.picklist),
                "picklistValues": [
                    {"value": v, "label": v, "active": True, "defaultValue": False}
                    for v in f.picklist
                ],
            }
        )
    return {
        **_describe_short(obj),
        "fields": fields,
        "childRelationships": [],
        "recordTypeInfos": [],
    }


def _soap_type(t: str) -> str:
    return {
        "id": "tns:ID",
        "reference": "tns:ID",
        "boolean": "xsd:boolean",
        "int": "xsd:int",
        "double": "xsd:double",
        "currency": "xsd:double",
        "date": "xsd:date",
        "datetime": "xsd:dateTime",
    }.get(t, "xsd:string")


# ---------------------------------------------------------------------------- HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalCRM/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("http: " + format, *args)

    def _handle(self) -> None:
        api: CrmApi = self.server.api  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = _Request(self.command, parts.path, parse_qs(parts.query), self.headers, body)
        resp = api.handle(req)
        if resp is None:  # injected dropped connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if isinstance(resp.body, bytes | str):
            payload = resp.body.encode("utf-8") if isinstance(resp.body, str) else resp.body
        elif resp.body is None:
            payload = b""
        else:
            payload = json.dumps(resp.body).encode("utf-8")
        self.send_response(resp.status)
        if payload or resp.status not in (204,):
            self.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class LocalCrmServer:
    """The local CRM serving HTTP on a background thread. Use as a context manager."""

    def __init__(
        self,
        store: CrmStore,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        api_limit: int = DEFAULT_API_LIMIT,
        seed: int = 0,
    ):
        self.store = store
        self.faults = FaultInjector(seed)
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        h, p = self._httpd.server_address[:2]
        self.url = f"http://{h}:{p}"
        self.api = CrmApi(store, self.url, self.faults, page_size, api_limit)
        self._httpd.api = self.api  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def instance(self) -> str:
        """`host:port`, what simple-salesforce calls the instance."""
        return self.url.split("://", 1)[1]

    def start(self) -> LocalCrmServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="local-crm", daemon=True
        )
        self._thread.start()
        log.info("local CRM serving %s on %s", self.store.path, self.url)
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self.api.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalCrmServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def session(self) -> requests.Session:
        return local_session(self.url)

    def issue_token(self, username: str = DEFAULT_USERNAME) -> str:
        """A session id for a user without an HTTP login (test convenience)."""
        with self.store.connection() as con:
            row = con.execute(
                'SELECT "Id" FROM "User" WHERE "Username" = ?', (username,)
            ).fetchone()
        if row is None:
            raise KeyError(f"no user with Username {username!r} in {self.store.path}")
        return self.api.issue_token(row[0])

    def request_log(self, since: int = 0) -> list[dict[str, Any]]:
        """Logged requests with seq > since (method, path, status, records, is_write, ...)."""
        with self.store.connection() as con:
            cur = con.execute("SELECT * FROM _request_log WHERE seq > ? ORDER BY seq", (since,))
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def last_request_seq(self) -> int:
        with self.store.connection() as con:
            return int(con.execute("SELECT COALESCE(MAX(seq), 0) FROM _request_log").fetchone()[0])

    def write_calls(self, since: int = 0) -> int:
        return sum(1 for r in self.request_log(since) if r["is_write"])


def ensure_default_credentials(store: CrmStore) -> tuple[str, str]:
    """If the store has no connected app, create the integration user and default credentials.

    Returns (client_id, client_secret) of the default app. Idempotent.
    """
    with store.connection() as con:
        has_app = con.execute("SELECT 1 FROM _connected_app LIMIT 1").fetchone() is not None
        row = con.execute(
            'SELECT "Id" FROM "User" WHERE "Username" = ?', (DEFAULT_USERNAME,)
        ).fetchone()
    if has_app and row is not None:
        return DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
    if row is None:
        user_id = store.insert(
            "User",
            [
                {
                    "Username": DEFAULT_USERNAME,
                    "Name": "Integration User",
                    "Email": DEFAULT_USERNAME,
                    "IsActive": True,
                    "Book_Role__c": "Admin",
                }
            ],
        )[0]
    else:
        user_id = row[0]
    if not has_app:
        store.add_connected_app(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, user_id)
        store.set_password(DEFAULT_USERNAME, DEFAULT_PASSWORD)
    return DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def start_in_process(
    db_path: str | Path,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    api_limit: int = DEFAULT_API_LIMIT,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    default_credentials: bool = True,
) -> LocalCrmServer:
    """Serve the CRM at `db_path` on a free loopback port in a background thread."""
    store = CrmStore(db_path)
    if default_credentials:
        ensure_default_credentials(store)
    return LocalCrmServer(store, host, port, page_size, api_limit, seed).start()


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
    """Run the CRM in the foreground until interrupted (the `books local-crm serve` command)."""
    server = start_in_process(db_path, host=host, port=port, **options)
    log.info("local CRM on %s (client_id=%s); Ctrl-C stops it", server.url, DEFAULT_CLIENT_ID)
    try:
        while server._thread is not None and server._thread.is_alive():
            server._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


class _LocalAdapter(HTTPAdapter):
    """Sends every https:// request to the local CRM's plain-HTTP address."""

    def __init__(self, target: str):
        super().__init__()
        self._target = urlsplit(target)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(
            (self._target.scheme, self._target.netloc, parts.path, parts.query, parts.fragment)
        )
        return super().send(request, **kwargs)


def local_session(server_url: str) -> requests.Session:
    """A requests session for simple-salesforce: every https:// URL (the instance and
    login.salesforce.com alike) goes to the local CRM at `server_url`."""
    s = requests.Session()
    s.mount("https://", _LocalAdapter(server_url))
    return s


def iter_all_records(sf: Any, soql: str) -> Iterator[dict[str, Any]]:
    """Follow nextRecordsUrl with a simple_salesforce client (shared test/demo helper)."""
    result = sf.query(soql)
    while True:
        yield from result["records"]
        if result.get("done", True):
            return
        result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
