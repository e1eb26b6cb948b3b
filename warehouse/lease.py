"""Single writer for the warehouse: a lease file beside the DuckDB file, and friendly lock errors.

Why a lease on top of DuckDB's own file lock: DuckDB's lock only covers one open connection,
while a cycle opens and closes the file many times (dlt, dbt, contracts, write-back). Two cycles
started together would interleave between those opens. The lease is held for the whole cycle.

The lease file (`<warehouse>.lease`, JSON: holder, pid, host, token, acquired_at, expires_at) is
changed only under an exclusive `flock` on `<warehouse>.lease.lock`, so reading, judging and
replacing it is atomic between processes. A lease is stale (and taken over, with a warning) when
it has expired, or when its holder ran on this host and that pid is gone. A heartbeat thread
renews the lease while the holder lives. Expiry uses the wall clock: it is infrastructure
timing, not product logic (no decision depends on it).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 120.0
_LOCK_MESSAGES = ("Could not set lock on file", "Conflicting lock is held")


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse; the message is one line, fit for a user."""


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    pid: int
    host: str
    token: str
    acquired_at: float
    expires_at: float

    def describe(self) -> str:
        return f"{self.holder!r} (pid {self.pid} on {self.host})"


def lease_path(warehouse_path: str | Path) -> Path:
    return Path(f"{Path(warehouse_path).resolve()}.lease")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lease(warehouse_path: str | Path) -> LeaseInfo | None:
    """The current lease as recorded (may be stale), or None."""
    return _read(lease_path(warehouse_path))


def _read(path: Path) -> LeaseInfo | None:
    try:
        return LeaseInfo(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _is_stale(lease: LeaseInfo, now: float) -> str | None:
    """Why the lease may be taken over, or None if it is live."""
    if lease.expires_at <= now:
        return "expired"
    if lease.host == socket.gethostname() and not _pid_alive(lease.pid):
        return f"pid {lease.pid} is gone"
    return None


@contextmanager
def _guard(path: Path) -> Iterator[None]:
    """Exclusive flock on the guard file for the read-judge-write of the lease."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write(path: Path, lease: LeaseInfo) -> None:
    tmp = path.with_name(f"{path.name}.{lease.token}.tmp")
    tmp.write_text(json.dumps(asdict(lease)))
    os.replace(tmp, path)


class Lease:
    """A held lease; renewed by a heartbeat until released."""

    def __init__(self, warehouse_path: Path, info: LeaseInfo, ttl: float) -> None:
        self.path = lease_path(warehouse_path)
        self.info = info
        self.ttl = ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name="warehouse-lease", daemon=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            if not self.renew():
                log.error("warehouse lease %s was taken over by another process", self.path)
                return

    def renew(self) -> bool:
        """Extend the lease; False if it is no longer ours."""
        with _guard(self.path):
            current = _read(self.path)
            if current is None or current.token != self.info.token:
                return False
            self.info = LeaseInfo(**{**asdict(current), "expires_at": time.time() + self.ttl})
            _write(self.path, self.info)
            return True

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with _guard(self.path):
            current = _read(self.path)
            if current is not None and current.token == self.info.token:
                self.path.unlink()
            else:
                log.warning("warehouse lease %s was no longer ours at release", self.path)


def _try_take(path: Path, holder: str, ttl: float) -> tuple[LeaseInfo | None, LeaseInfo | None]:
    """(our new lease, None) or (None, the live lease that blocks us)."""
    with _guard(path):
        current = _read(path)
        now = time.time()
        if current is not None:
            why = _is_stale(current, now)
            if why is None:
                return None, current
            log.warning("taking over stale warehouse lease of %s: %s", current.describe(), why)
        info = LeaseInfo(
            holder, os.getpid(), socket.gethostname(), uuid.uuid4().hex, now, now + ttl
        )
        _write(path, info)
        return info, None


@contextmanager
def acquire(
    warehouse_path: str | Path,
    holder: str,
    *,
    wait_seconds: float = 0.0,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    poll_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Lease]:
    """Hold the warehouse's single-writer lease for the block.

    Waits up to `wait_seconds` for a live holder to finish, then raises `WarehouseBusyError`
    whose message names the holder. `holder` is what others are told (e.g. 'books cycle run X').
    """
    path = lease_path(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        info, blocker = _try_take(path, holder, ttl_seconds)
        if info is not None:
            break
        assert blocker is not None
        if time.monotonic() >= deadline:
            raise WarehouseBusyError(
                f"warehouse {Path(warehouse_path)} is in use by {blocker.describe()}; "
                f"waited {wait_seconds:g}s - try again when it finishes"
            )
        sleep(poll_seconds)
    lease = Lease(Path(warehouse_path).resolve(), info, ttl_seconds)
    lease._thread.start()
    log.info("warehouse lease acquired by %s", info.describe())
    try:
        yield lease
    finally:
        lease.release()


def busy_error(exc: BaseException, warehouse_path: str | Path) -> WarehouseBusyError | None:
    """A one-line `WarehouseBusyError` for DuckDB's lock conflict, or None for other errors."""
    text = str(exc)
    if not any(m in text for m in _LOCK_MESSAGES):
        return None
    holder = read_lease(warehouse_path)
    who = f" by {holder.describe()}" if holder else " by another process"
    return WarehouseBusyError(
        f"warehouse {Path(warehouse_path)} is open for writing{who}; try again when it finishes"
    )


def connect_warehouse(
    warehouse_path: str | Path, *, read_only: bool = False, **config: Any
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect` that turns a lock conflict into a one-line `WarehouseBusyError`."""
    try:
        return duckdb.connect(str(warehouse_path), read_only=read_only, **config)
    except duckdb.Error as exc:
        friendly = busy_error(exc, warehouse_path)
        if friendly is None:
            raise
        raise friendly from None
