"""Single writer: two cycles never interleave; busy is one clear line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from warehouse.lease import (
    WarehouseBusyError,
    acquire,
    connect_warehouse,
    lease_path,
    read_lease,
    read_lease_log,
)

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("lease_worker.py")


def _start(warehouse: Path, log: Path, name: str, wait: float, hold: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(warehouse), str(log), name, str(wait), str(hold)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_cycles_started_together_never_interleave(tmp_path: Path) -> None:
    warehouse, log = tmp_path / "w.duckdb", tmp_path / "intervals.txt"
    procs = [_start(warehouse, log, name, wait=60, hold=1.0) for name in ("a", "b")]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    (_, s1, e1), (_, s2, e2) = sorted(
        (line.split()[0], float(line.split()[1]), float(line.split()[2]))
        for line in log.read_text().splitlines()
    )
    first, second = sorted([(s1, e1), (s2, e2)])
    print(f"\nintervals: {first} then {second}")
    assert first[1] <= second[0], "the two writers overlapped"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        order = [r[0] for r in con.execute("select who from writes order by written_at").fetchall()]
    assert order in (["a"] * 5 + ["b"] * 5, ["b"] * 5 + ["a"] * 5)  # no interleaved writes
    assert not lease_path(warehouse).exists()


def test_second_cycle_without_waiting_exits_with_one_line(tmp_path: Path) -> None:
    warehouse, log = tmp_path / "w.duckdb", tmp_path / "intervals.txt"
    with acquire(warehouse, "books cycle run-42"):
        proc = _start(warehouse, log, "late", wait=0.2, hold=0)
        code, err = proc.wait(timeout=60), proc.stderr.read()
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "in use by 'books cycle run-42'" in err and f"pid {os.getpid()}" in err


def test_stale_lease_of_a_dead_process_is_taken_over(tmp_path: Path, caplog) -> None:
    warehouse = tmp_path / "w.duckdb"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"holder": "crashed cycle", "pid": dead.pid, "host": socket.gethostname(),
             "token": "old", "acquired_at": time.time(), "expires_at": time.time() + 3600}  # fmt: skip
    lease_path(warehouse).write_text(json.dumps(stale))
    with acquire(warehouse, "new cycle") as lease:
        assert read_lease(warehouse).token == lease.info.token
    assert "taking over stale warehouse lease of 'crashed cycle'" in caplog.text


def test_expired_lease_is_taken_over_but_a_live_one_is_not(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    other = {"holder": "other host", "pid": 1, "host": "elsewhere", "token": "t",
             "acquired_at": time.time(), "expires_at": time.time() + 3600}  # fmt: skip
    lease_path(warehouse).write_text(json.dumps(other))
    with pytest.raises(WarehouseBusyError, match="in use by 'other host' \\(pid 1 on elsewhere\\)"):
        with acquire(warehouse, "me", wait_seconds=0.1, poll_seconds=0.05):
            pass
    lease_path(warehouse).write_text(json.dumps(other | {"expires_at": time.time() - 1}))
    with acquire(warehouse, "me") as lease:
        assert lease.info.holder == "me"


def test_heartbeat_renews_the_lease(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    with acquire(warehouse, "slow cycle", ttl_seconds=0.3) as lease:
        first = lease.info.expires_at
        time.sleep(0.5)
        assert read_lease(warehouse).expires_at > first
        assert read_lease(warehouse).expires_at > time.time()


def test_duckdb_lock_conflict_becomes_one_clear_line(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "c.execute('create table t (x int)'); print('ready', flush=True); time.sleep(30)",
         str(warehouse)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseBusyError) as info:
            connect_warehouse(warehouse)
        message = str(info.value)
        assert "\n" not in message and "is open for writing by another process" in message
        assert info.value.__suppress_context__  # no chained DuckDB traceback
    finally:
        holder.kill()
        holder.wait()


# --- a lease keyed by a Dagster run: re-entrant for the run, kept between its steps ----------
def test_a_run_keyed_lease_is_joined_by_its_own_run_and_blocks_others(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    with acquire(warehouse, "books cycle r1", run_key="dagster-1") as outer:
        with acquire(warehouse, "step of dagster-1", run_key="dagster-1") as step:
            assert step.joined and step.info.token == outer.info.token
        assert read_lease(warehouse).token == outer.info.token  # the step left it in place
        with pytest.raises(WarehouseBusyError, match="in use by 'books cycle r1'"):
            with acquire(warehouse, "scheduled run", run_key="dagster-2", wait_seconds=0.1,
                         poll_seconds=0.05):  # fmt: skip
                pass
    assert not lease_path(warehouse).exists()
    events = [(e["event"], e["run_key"]) for e in read_lease_log(warehouse)]
    assert events == [("acquired", "dagster-1"), ("joined", "dagster-1"), ("left", "dagster-1"),
                      ("released", "dagster-1")]  # fmt: skip


def test_a_kept_step_lease_lives_with_its_run_worker_and_ends_with_its_run(
    tmp_path: Path,
) -> None:
    """A step process keeps the lease for its run (pid: the run worker); it is freed when the
    run finishes or the run worker dies, by the stale rule, never between two steps."""
    warehouse = tmp_path / "w.duckdb"
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with acquire(warehouse, "step 1", run_key="run-a", pid=worker.pid, keep=True):
            pass
        assert read_lease(warehouse).run_key == "run-a"  # kept for the run's next step
        running: set[str] = {"run-a"}
        with pytest.raises(WarehouseBusyError):
            with acquire(warehouse, "other", run_key="run-b", wait_seconds=0.1, poll_seconds=0.05,
                         finished=lambda key: key not in running):  # fmt: skip
                pass
        running.clear()  # the run finished: its lease is free
        with acquire(warehouse, "other", run_key="run-b", finished=lambda key: True) as lease:
            assert lease.info.run_key == "run-b" and not lease.joined
        with acquire(warehouse, "step 1", run_key="run-c", pid=worker.pid, keep=True):
            pass
    finally:
        worker.kill()
        worker.wait()
    with acquire(warehouse, "after a crash", run_key="run-d") as lease:  # run worker gone
        assert lease.info.run_key == "run-d"


def test_a_live_holder_keeps_the_lease_after_its_dagster_run_finished(tmp_path: Path) -> None:
    """`books run` holds the lease past its Dagster run (it publishes afterwards): another cycle
    that sees that run finished must still wait (found by the two-cycle test: a DuckDB lock)."""
    warehouse = tmp_path / "w.duckdb"
    with acquire(warehouse, "books cycle", run_key="run-a"):
        with acquire(warehouse, "step", run_key="run-a") as step:  # a step joins, then leaves
            assert step.joined
        with pytest.raises(WarehouseBusyError):
            with acquire(warehouse, "scheduled", run_key="run-b", wait_seconds=0.1,
                         poll_seconds=0.05, finished=lambda key: True):  # fmt: skip
                pass
    with acquire(warehouse, "scheduled", run_key="run-b", finished=lambda key: True) as lease:
        assert not lease.joined
