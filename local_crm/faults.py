"""Fault injection for the local CRM: the failures a real Salesforce org produces, on demand.

A test switches faults on for an endpoint pattern (`fnmatch` on the API path after
`/services/data/vNN.0/`, e.g. `"composite/sobjects"`, `"query*"`, `"jobs/ingest*"`, or
`"oauth2/token"`), optionally for a number of calls. Every random choice is a hash of
(seed, fault, key, attempt), so a run is deterministic under a seed and a retry of the same
record draws again (a transient lock clears on retry, a persistent one does not).
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from local_crm.db import RecordError

# Request-level faults: the whole call fails (or is slowed / dropped).
REQUEST_FAULTS = ("rate_limit", "request_limit", "unavailable", "expired_session", "slow", "drop")
# Record-level faults: some records of a write fail; the call itself succeeds.
RECORD_FAULTS = ("lock_rows", "persistent_lock")
# Record-level: the CRM answers success for some records of an update but does not save them.
DROP_FAULTS = ("silent_drop",)
# Bulk ingest: the job stops after `processed_rows` and ends Failed.
JOB_FAULTS = ("bulk_job_failed",)
FAULT_KINDS = REQUEST_FAULTS + RECORD_FAULTS + DROP_FAULTS + JOB_FAULTS


@dataclass
class Fault:
    """One switched-on fault. `after` lets that many matching calls pass; `times` caps firing."""

    kind: str
    path: str = "*"
    method: str | None = None
    after: int = 0
    times: int | None = None
    # lock_rows, silent_drop: share of records; request faults: share of matching calls
    share: float = 1.0
    retry_after: int = 1
    delay: float = 0.0  # slow: seconds
    ids: frozenset[str] = frozenset()  # persistent_lock, silent_drop: ids hit on every call
    processed_rows: int = 0  # bulk_job_failed: rows processed before the job fails
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"fault {self.kind}: share must be within [0, 1], got {self.share}")

    def matches(self, method: str, api_path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(api_path, self.path)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass(frozen=True)
class RequestFault:
    """What the server must do to this request instead of (or before) handling it."""

    kind: str
    status: int = 0
    error_code: str = ""
    message: str = ""
    retry_after: int | None = None
    delay: float = 0.0


def lock_error(record_id: str | None) -> RecordError:
    """Salesforce's row-lock error for one record."""
    suffix = f": {record_id}" if record_id else ""
    return RecordError(
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records{suffix}",
    )


class FaultInjector:
    """The set of active faults of one server; thread-safe; deterministic under `seed`."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._faults: list[Fault] = []
        self._attempts: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    # -- switching faults on and off (tests)

    def add(self, kind: str, **options: object) -> Fault:
        """Switch a fault on; see `Fault` for options. Returns it (inspect `.fired`)."""
        if "ids" in options:
            options["ids"] = frozenset(options["ids"])  # type: ignore[arg-type]
        fault = Fault(kind, **options)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._attempts.clear()

    @contextmanager
    def injected(self, kind: str, **options: object) -> Iterator[Fault]:
        """`with server.faults.injected("rate_limit", path="query*"): ...`"""
        fault = self.add(kind, **options)
        try:
            yield fault
        finally:
            self.remove(fault)

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    # -- hooks the server calls

    def on_request(self, method: str, api_path: str) -> list[RequestFault]:
        """Request-level faults to apply to this call, in order (slow before failing)."""
        out: list[RequestFault] = []
        with self._lock:
            for idx, f in enumerate(self._faults):
                if f.kind not in REQUEST_FAULTS or not f.matches(method, api_path):
                    continue
                f.seen += 1
                if f.seen <= f.after or f.exhausted:
                    continue
                if f.share < 1.0 and self._draw(idx, api_path, f.seen) >= f.share:
                    continue
                f.fired += 1
                out.append(_request_fault(f))
        out.sort(key=lambda r: r.kind != "slow")
        return out

    def record_errors(
        self, method: str, api_path: str, ids: Sequence[str | None]
    ) -> dict[int, RecordError]:
        """Per-record UNABLE_TO_LOCK_ROW errors for this write, keyed by position."""
        out: dict[int, RecordError] = {}
        with self._lock:
            for idx, f in enumerate(self._faults):
                if f.kind not in RECORD_FAULTS or not f.matches(method, api_path):
                    continue
                if f.exhausted:
                    continue
                hit = False
                for pos, rec_id in enumerate(ids):
                    if pos in out:
                        continue
                    if f.kind == "persistent_lock":
                        if rec_id is not None and rec_id in f.ids:
                            out[pos] = lock_error(rec_id)
                            hit = True
                        continue
                    key = rec_id or f"#{pos}"
                    attempt = self._attempts.get((idx, key), 0) + 1
                    self._attempts[(idx, key)] = attempt
                    if self._draw(idx, key, attempt) < f.share:
                        out[pos] = lock_error(rec_id)
                        hit = True
                if hit:
                    f.fired += 1
        return out

    def silent_drops(self, method: str, api_path: str, ids: Sequence[str | None]) -> set[int]:
        """Positions of an update the CRM reports saved but drops (each retry draws again)."""
        out: set[int] = set()
        with self._lock:
            for idx, f in enumerate(self._faults):
                if f.kind not in DROP_FAULTS or not f.matches(method, api_path) or f.exhausted:
                    continue
                for pos, rec_id in enumerate(ids):
                    if rec_id is not None and rec_id in f.ids:  # dropped while the fault lasts
                        out.add(pos)
                        f.fired += 1
                        continue
                    key = rec_id or f"#{pos}"
                    attempt = self._attempts.get((idx, key), 0) + 1
                    self._attempts[(idx, key)] = attempt
                    if pos not in out and self._draw(idx, key, attempt) < f.share:
                        out.add(pos)
                        f.fired += 1
        return out

    def bulk_job_failure(self, api_path: str) -> Fault | None:
        """The bulk_job_failed fault that applies to the job being processed, if any."""
        with self._lock:
            for f in self._faults:
                if f.kind == "bulk_job_failed" and fnmatch.fnmatchcase(api_path, f.path):
                    f.seen += 1
                    if f.seen <= f.after or f.exhausted:
                        continue
                    f.fired += 1
                    return f
        return None

    def _draw(self, idx: int, key: str, attempt: int) -> float:
        digest = hashlib.sha256(f"{self.seed}|{idx}|{key}|{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64


def _request_fault(f: Fault) -> RequestFault:
    if f.kind == "rate_limit":
        return RequestFault(
            "rate_limit",
            429,
            "REQUEST_LIMIT_EXCEEDED",
            "Too many requests: retry later.",
            f.retry_after,
        )
    if f.kind == "request_limit":
        return RequestFault(
            "request_limit",
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
            f.retry_after,
        )
    if f.kind == "unavailable":
        return RequestFault(
            "unavailable",
            503,
            "SERVER_UNAVAILABLE",
            "Server temporarily unavailable, please try again later.",
            f.retry_after,
        )
    if f.kind == "expired_session":
        return RequestFault(
            "expired_session", 401, "INVALID_SESSION_ID", "Session expired or invalid"
        )
    if f.kind == "slow":
        return RequestFault("slow", delay=f.delay)
    return RequestFault("drop")
