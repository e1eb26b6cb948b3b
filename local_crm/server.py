"""The local CRM's HTTP API: the subset of Salesforce's REST, Collections and Bulk 2.0 APIs the
product uses, with Salesforce's URLs, status codes and error shapes, over a `CrmStore`.

Run it in-process for tests and the demo (`start_in_process`) or standalone (`serve`). The
production connector (simple-salesforce) talks to it through `local_session`, a requests session
that routes simple-salesforce's `https://` URLs to this plain-HTTP loopback server.
"""

from __future__ import annotations

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
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from local_crm.api.auth import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    AuthRoutes,
    ensure_default_credentials,
    form_client_id,
)
from local_crm.api.base import ApiError, Request, Response, method_not_allowed
from local_crm.api.bulk import BulkRoutes, QueryJob
from local_crm.api.faults import FaultRoutes
from local_crm.api.query import Cursor, QueryRoutes
from local_crm.api.sobjects import SObjectRoutes
from local_crm.db import CrmStore, format_datetime
from local_crm.faults import FaultInjector

__all__ = [
    "DEFAULT_API_LIMIT",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "CrmApi",
    "LocalCrmServer",
    "ensure_default_credentials",
    "iter_all_records",
    "local_session",
    "serve",
    "start_in_process",
]

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 2000
DEFAULT_API_LIMIT = 100_000
_VERSION_RE = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")


class CrmApi(AuthRoutes, FaultRoutes, QueryRoutes, SObjectRoutes, BulkRoutes):
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
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._query_jobs: OrderedDict[str, QueryJob] = OrderedDict()
        self._cursor_lock = threading.Lock()
        self._locator_seq = itertools.count(1)
        self._signing_key = secrets.token_bytes(32)
        # When each request arrives, for the request log; a test swaps in the fake clock its
        # client sleeps on, to check every request against the Retry-After it was given.
        self.monotonic: Callable[[], float] = time.monotonic

    def handle(self, req: Request) -> Response | None:
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

    def _dispatch(self, req: Request) -> tuple[Response | None, int]:
        if req.path.rstrip("/") == "/services/oauth2/token":
            req.api_path = "oauth2/token"
            req.client_id = form_client_id(req)  # so a faulted login is logged per client
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

    def _log(self, req: Request, resp: Response | None, seconds: float) -> None:
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

    def _route(self, req: Request) -> Response:
        parts = req.api_path.split("/") if req.api_path else []
        head = parts[0] if parts else ""
        m = req.method
        if head in ("query", "queryAll"):
            if m != "GET":
                raise method_not_allowed(m, "GET")
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

    def close(self) -> None:
        with self._cursor_lock:
            for c in [*self._cursors.values(), *self._query_jobs.values()]:
                c.close()
            self._cursors.clear()
            self._query_jobs.clear()


def _is_write(req: Request) -> bool:
    """Whether the call changes CRM data (what "zero write calls" tests count)."""
    p = req.api_path
    if req.method not in ("POST", "PATCH", "PUT", "DELETE"):
        return False
    return p.startswith("sobjects/") or p == "composite/sobjects" or p.startswith("jobs/ingest")


def _retry_after(resp: Response | None) -> float | None:
    value = resp.headers.get("Retry-After") if resp is not None else None
    return float(value) if value is not None else None


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
        req = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body)
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


# Faults every server this process starts gets (`faults_for_new_servers`), as (kind, options).
_NEW_SERVER_FAULTS: list[tuple[str, dict[str, Any]]] = []


@contextmanager
def faults_for_new_servers(faults: list[tuple[str, dict[str, Any]]]) -> Iterator[None]:
    """Switch `faults` (kind, options of `FaultInjector.add`) on in every local CRM started in
    this process meanwhile: the policy lab's chaos mode reaches the server a production cycle
    starts for itself this way, without a second code path for the cycle."""
    _NEW_SERVER_FAULTS.extend(faults)
    try:
        yield
    finally:
        for fault in faults:
            _NEW_SERVER_FAULTS.remove(fault)


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
    server = LocalCrmServer(store, host, port, page_size, api_limit, seed)
    for kind, options in list(_NEW_SERVER_FAULTS):
        server.faults.add(kind, **options)
    return server.start()


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
