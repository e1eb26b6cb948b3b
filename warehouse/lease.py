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

A lease may be keyed by a Dagster run id (`run_key`): then every step of that run joins it
(re-entrant), whichever process the step runs in, so `books run` (which takes it before the
run starts) and a scheduled run (whose steps take it through the warehouse resource) never
interleave. A run-keyed lease records the run worker's pid, may be kept between steps
(`keep=True`), and is stale once that pid is gone, it expires, or `finished(run_key)` says the
run is over. Every acquire/join/release is appended to `<warehouse>.lease.log` (JSON lines).
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
    run_key: str = ""  # the Dagster run id holding it ("" for a holder outside Dagster)
    kept: bool = False  # left in place between a run's steps (no process is holding it now)

    def describe(self) -> str:
        return f"{self.holder!r} (pid {self.pid} on {self.host})"


def lease_path(warehouse_path: str | Path) -> Path:
    return Path(f"{Path(warehouse_path).resolve()}.lease")


def lease_log_path(warehouse_path: str | Path) -> Path:
    """JSON lines: one per acquire, join, keep and release (who held the warehouse, when)."""
    return Path(f"{Path(warehouse_path).resolve()}.lease.log")


def read_lease_log(warehouse_path: str | Path) -> list[dict[str, Any]]:
    path = lease_log_path(warehouse_path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _log_event(path: Path, event: str, info: LeaseInfo) -> None:
    """Append one event (under the guard, so lines never interleave)."""
    line = json.dumps({"event": event, "at": time.time(), "holder": info.holder,
                       "run_key": info.run_key, "pid": os.getpid(), "token": info.token})  # fmt: skip
    with open(f"{path}.log", "a", encoding="utf-8") as out:
        out.write(line + "\n")


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


Finished = Callable[[str], bool]


def _is_stale(lease: LeaseInfo, now: float, finished: Finished | None = None) -> str | None:
    """Why the lease may be taken over, or None if it is live."""
    if lease.expires_at <= now:
        return "expired"
    if lease.host == socket.gethostname() and not _pid_alive(lease.pid):
        return f"pid {lease.pid} is gone"
    # Only a lease left between steps ends with its Dagster run: a live holder (`books run`,
    # which publishes after its Dagster run) keeps it until it releases it.
    if lease.kept and lease.run_key and finished is not None and finished(lease.run_key):
        return f"its Dagster run {lease.run_key} has finished"
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
    """A held lease; renewed by a heartbeat until released.

    `joined`: another holder of the same run took it; releasing only stops our heartbeat.
    `keep`: leave the lease in place at release (a step of a run whose later steps follow).
    """

    def __init__(
        self, warehouse_path: Path, info: LeaseInfo, ttl: float, *, joined: bool = False,
        keep: bool = False,
    ) -> None:  # fmt: skip
        self.path = lease_path(warehouse_path)
        self.info = info
        self.ttl = ttl
        self.joined = joined
        self.keep = keep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name="warehouse-lease", daemon=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            if not self.renew():
                log.error(
                    "warehouse lease %s was taken over by another process (this one was taken "
                    "as dead); this process goes on without it, so two writers may collide: "
                    "stop one of them",
                    self.path,
                )
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
            if current is None or current.token != self.info.token:
                log.warning(
                    "warehouse lease %s was no longer ours at release; left to its holder",
                    self.path,
                )
            elif self.keep:
                _write(self.path, LeaseInfo(**{**asdict(current), "kept": True}))
                _log_event(self.path, "left", current)  # the run's lease stays for its next step
            elif self.joined:
                _log_event(self.path, "left", current)  # its first holder still holds it
            else:
                self.path.unlink()
                _log_event(self.path, "released", current)


def _try_take(
    path: Path, holder: str, ttl: float, run_key: str, pid: int, finished: Finished | None
) -> tuple[LeaseInfo | None, LeaseInfo | None, bool]:
    """(our lease, None, joined?) or (None, the live lease that blocks us, False)."""
    with _guard(path):
        current = _read(path)
        now = time.time()
        if current is not None and run_key and current.run_key == run_key:
            # Re-entrant: another step (or the runner) of this same Dagster run holds it.
            info = LeaseInfo(
                **{**asdict(current), "expires_at": max(current.expires_at, now + ttl),
                   "kept": False}
            )  # fmt: skip
            _write(path, info)
            _log_event(path, "joined", info)
            return info, None, True
        if current is not None:
            why = _is_stale(current, now, finished)
            if why is None:
                return None, current, False
            level = logging.INFO if why.startswith("its Dagster run") else logging.WARNING
            log.log(level, "taking over stale warehouse lease of %s: %s", current.describe(), why)
        info = LeaseInfo(
            holder, pid, socket.gethostname(), uuid.uuid4().hex, now, now + ttl, run_key
        )
        _write(path, info)
        _log_event(path, "acquired", info)
        return info, None, False


@contextmanager
def acquire(
    warehouse_path: str | Path,
    holder: str,
    *,
    wait_seconds: float = 0.0,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    poll_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    run_key: str = "",
    pid: int | None = None,
    finished: Finished | None = None,
    keep: bool = False,
) -> Iterator[Lease]:
    """Hold the warehouse's single-writer lease for the block.

    Waits up to `wait_seconds` for a live holder to finish, then raises `WarehouseBusyError`
    whose message names the holder. `holder` is what others are told (e.g. 'books cycle run X').
    With `run_key` (a Dagster run id) a lease already held for that run is joined, not waited
    for; `pid` is the process whose death frees the lease (default: this one); `finished`
    tells whether a run-keyed blocker's run is over; `keep` leaves the lease at block end.
    """
    path = lease_path(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        info, blocker, joined = _try_take(
            path, holder, ttl_seconds, run_key, pid or os.getpid(), finished
        )
        if info is not None:
            break
        assert blocker is not None
        if time.monotonic() >= deadline:
            raise WarehouseBusyError(
                f"warehouse {Path(warehouse_path)} is in use by {blocker.describe()}; "
                f"waited {wait_seconds:g}s and gave up before writing anything - try again "
                "when it finishes"
            )
        sleep(poll_seconds)
    lease = Lease(Path(warehouse_path).resolve(), info, ttl_seconds, joined=joined, keep=keep)
    lease._thread.start()
    log.info("warehouse lease %s by %s", "joined" if joined else "acquired", info.describe())
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
