"""One connection to a Salesforce-compatible CRM: OAuth, retries, REST query and Bulk 2.0 query.

The same code path serves a real org and the local CRM (DESIGN decision 2): for the local CRM the
requests session comes from `local_crm.server.local_session`, whose adapter lets
simple-salesforce's https URLs reach the local server. Ingestion and write-back both go through
`SalesforceConnection.request`, so the retry policy (Retry-After, backoff with jitter, one
re-login per expired session) lives in exactly one place. No Dagster imports here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce

from crm.retry import (
    SESSION_EXPIRED_CODES,
    TRANSIENT_STATUSES,
    Backoff,
    RetryPolicy,
    parse_retry_after,
)

log = logging.getLogger(__name__)


class CrmError(Exception):
    """A CRM call that failed for good (after retries), with the CRM's own error code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (HTTP {status})" if status else ""))
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class CrmSettings:
    """Where the CRM is and how to log in. Secrets are hidden from repr and never logged."""

    kind: Literal["local", "salesforce"]
    base_url: str  # local server URL, or the org's My Domain / instance URL
    client_id: str
    client_secret: str = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_version: str = "62.0"

    def __post_init__(self) -> None:
        if self.kind not in ("local", "salesforce"):
            raise ValueError(f"CrmSettings.kind must be 'local' or 'salesforce', got {self.kind!r}")
        if not urlparse(self.base_url).netloc:
            raise ValueError(f"CrmSettings.base_url must be an absolute URL, got {self.base_url!r}")

    @classmethod
    def from_env(
        cls,
        *,
        instance_url_env: str = "SF_INSTANCE_URL",
        client_id_env: str = "SF_CLIENT_ID",
        client_secret_env: str = "SF_CLIENT_SECRET",
        username_env: str = "SF_USERNAME",
        password_env: str = "SF_PASSWORD",
        api_version: str = "62.0",
        environ: Mapping[str, str] | None = None,
    ) -> CrmSettings:
        """Settings for a real org, read only from environment variables (names configurable).

        Username/password are optional: without them the client-credentials flow is used.
        """
        env = os.environ if environ is None else environ
        missing = [
            n for n in (instance_url_env, client_id_env, client_secret_env) if not env.get(n)
        ]
        if missing:
            raise CrmError(
                "MISSING_CREDENTIALS",
                "set the environment variable(s) " + ", ".join(missing) + " to reach Salesforce",
            )
        return cls(
            kind="salesforce",
            base_url=env[instance_url_env],
            client_id=env[client_id_env],
            client_secret=env[client_secret_env],
            username=env.get(username_env) or None,
            password=env.get(password_env) or None,
            api_version=api_version,
        )


def _error_of(resp: requests.Response) -> tuple[str, str]:
    """(errorCode, message) from a Salesforce error body (a list, a dict, or OAuth style)."""
    try:
        body: Any = resp.json()
    except ValueError:
        return f"HTTP_{resp.status_code}", (resp.text or resp.reason or "")[:500]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error") or f"HTTP_{resp.status_code}"
        msg = body.get("message") or body.get("error_description") or ""
        return str(code), str(msg)
    return f"HTTP_{resp.status_code}", str(body)[:500]


def _is_transient(status: int, code: str) -> bool:
    if status in TRANSIENT_STATUSES:
        return True
    return status == 403 and code == "REQUEST_LIMIT_EXCEEDED"


class SalesforceConnection:
    """A logged-in connection; `request` is the single retried entry point to the API."""

    def __init__(
        self,
        settings: CrmSettings,
        session: requests.Session,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.session = session
        self.policy = policy or RetryPolicy()
        self.backoff = Backoff(self.policy, sleep=sleep, clock=clock)
        self._sleep = sleep
        self._clock = clock
        self._token: str | None = None
        self._instance: str = urlparse(settings.base_url).netloc
        self.sf: Salesforce | None = None
        self.api_usage: tuple[int, int] | None = None
        self.request_count = 0  # API calls sent (incl. retries), for calls-per-change figures
        self.relogin_count = 0
        self.last_total_size: int | None = None  # totalSize of the last REST query

    # -- authentication -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """https URL of the REST API root for this connection's version."""
        return f"https://{self._instance}/services/data/v{self.settings.api_version}/"

    def login(self) -> None:
        """OAuth 2.0: password flow when a username is configured, else client credentials."""
        s = self.settings
        data = {"client_id": s.client_id, "client_secret": s.client_secret}
        if s.username:
            data.update(grant_type="password", username=s.username, password=s.password or "")
        else:
            data["grant_type"] = "client_credentials"
        host = urlparse(s.base_url).netloc
        url = f"https://{host}/services/oauth2/token"
        resp = self._send("POST", url, data=data, authenticated=False, allow_relogin=False)
        body = resp.json()
        token = body.get("access_token")
        if not token:
            raise CrmError(
                "LOGIN_FAILED", "token endpoint returned no access_token", resp.status_code
            )
        self._token = token
        instance_url = body.get("instance_url") or s.base_url
        self._instance = urlparse(instance_url).netloc or host
        self.sf = Salesforce(
            instance=self._instance,
            session_id=token,
            session=self.session,
            version=s.api_version,
        )
        log.info("logged in to %s CRM at %s", s.kind, self._instance)

    def relogin(self) -> None:
        """Log in again (after INVALID_SESSION_ID); rebuilds `sf` with the new session id."""
        self.relogin_count += 1
        log.info("CRM session expired; logging in again (re-login #%d)", self.relogin_count)
        self.login()

    # -- HTTP -----------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        if path.startswith("/services/"):
            return f"https://{self._instance}{path}"
        return self.base_url + path.lstrip("/")

    def _record_usage(self, resp: requests.Response) -> None:
        info = resp.headers.get("Sforce-Limit-Info", "")
        for part in info.split(","):
            key, _, value = part.strip().partition("=")
            if key == "api-usage" and "/" in value:
                used, _, limit = value.partition("/")
                try:
                    self.api_usage = (int(used), int(limit))
                except ValueError:
                    log.warning("unparseable Sforce-Limit-Info header: %r", info)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one API request with the retry policy; `path` is relative to /services/data/vX/.

        Raises CrmError for permanent errors or when retries are exhausted.
        """
        return self._send(
            method, self._url(path), params=params, json=json, data=data, headers=headers
        )

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        allow_relogin: bool = True,
    ) -> requests.Response:
        relogged = False
        attempt = 0
        what = f"{method} {urlparse(url).path}"
        while True:
            attempt += 1
            hdrs = {"Accept": "application/json"}
            if authenticated:
                hdrs["Authorization"] = f"Bearer {self._token}"
            hdrs.update(headers or {})
            self.request_count += 1
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=hdrs,
                    timeout=self.policy.timeout,
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = "TIMEOUT" if isinstance(exc, requests.Timeout) else "CONNECTION_ERROR"
                if attempt >= self.policy.max_attempts:
                    raise CrmError(kind, f"{what} failed after {attempt} attempts") from exc
                waited = self.backoff.wait(attempt)
                log.warning("%s: %s; retry %d in %.2fs", what, kind, attempt, waited)
                continue
            self._record_usage(resp)
            if resp.ok:
                return resp
            code, message = _error_of(resp)
            if resp.status_code == 401 and authenticated and allow_relogin and not relogged:
                if code in SESSION_EXPIRED_CODES or code.startswith("HTTP_"):
                    relogged = True
                    self.relogin()
                    continue
            if _is_transient(resp.status_code, code) and attempt < self.policy.max_attempts:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                waited = self.backoff.wait(attempt, retry_after)
                log.warning(
                    "%s: %s (HTTP %d); retry %d after %.2fs",
                    what,
                    code,
                    resp.status_code,
                    attempt,
                    waited,
                )
                continue
            raise CrmError(code, message, resp.status_code)

    # -- queries --------------------------------------------------------------------------
    def query_all_pages(self, soql: str, include_deleted: bool = False) -> Iterator[list[dict]]:
        """REST query (or queryAll, which also returns deleted and archived rows), page by page.

        Records come without the `attributes` key. `last_total_size` is set after page one.
        """
        endpoint = "queryAll/" if include_deleted else "query/"
        resp = self.request("GET", endpoint, params={"q": soql})
        while True:
            body = resp.json()
            self.last_total_size = body.get("totalSize")
            records = body.get("records") or []
            for rec in records:
                rec.pop("attributes", None)
            yield records
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return
            resp = self.request("GET", next_url)

    def bulk_query_csv(
        self,
        soql: str,
        include_deleted: bool = False,
        *,
        max_records: int | None = None,
        poll_timeout: float = 3600.0,
    ) -> Iterator[bytes]:
        """Bulk API 2.0 query: create a job, poll it, then stream CSV result pages.

        Each yielded chunk is a complete CSV document with its own header row; paging follows
        the `Sforce-Locator` header until it is absent or the string 'null'.
        """
        job = self.request(
            "POST",
            "jobs/query",
            json={
                "operation": "queryAll" if include_deleted else "query",
                "query": soql,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
        ).json()
        job_id = job["id"]
        started = self._clock()
        interval = 0.2
        while True:
            state = self.request("GET", f"jobs/query/{job_id}").json()
            status = state.get("state")
            if status == "JobComplete":
                break
            if status in ("Failed", "Aborted"):
                raise CrmError(
                    "BULK_JOB_FAILED",
                    f"bulk query job {job_id} {status}: {state.get('errorMessage', '')}",
                )
            if self._clock() - started > poll_timeout:
                raise CrmError("BULK_JOB_TIMEOUT", f"bulk query job {job_id} still {status}")
            self._sleep(interval)
            interval = min(interval * 2, 5.0)
        locator: str | None = None
        while True:
            params: dict[str, Any] = {}
            if max_records:
                params["maxRecords"] = max_records
            if locator:
                params["locator"] = locator
            resp = self.request(
                "GET", f"jobs/query/{job_id}/results", params=params, headers={"Accept": "text/csv"}
            )
            yield resp.content
            locator = resp.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                return


def _session_for(settings: CrmSettings) -> requests.Session:
    if settings.kind == "local":
        # Imported lazily: a real-org deployment does not need the local CRM's server code.
        from local_crm.server import local_session

        return local_session(settings.base_url)
    return requests.Session()


def connect(
    settings: CrmSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    policy: RetryPolicy | None = None,
    session: requests.Session | None = None,
) -> SalesforceConnection:
    """Open and log in a connection; `sleep`/`clock`/`policy` are injectable for tests."""
    conn = SalesforceConnection(
        settings, session or _session_for(settings), policy=policy, sleep=sleep, clock=clock
    )
    conn.login()
    return conn
