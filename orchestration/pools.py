"""Dagster pool slots around a books cycle: free a dead run's, wait visibly for a live run's.

Why: a `books run` killed mid-step leaves its Dagster run STARTED with its `duckdb_writer` slot
claimed; with the pool's limit of 1 the next run's steps would wait for it forever, with no
output. The runner knows when the previous warehouse lease holder died (it took its lease
over), so it marks that Dagster run failed and frees its slots before starting. Slots still
claimed by runs that have ended are freed too (what the Dagster daemon's
`free_slots_after_run_end_seconds` does, for an instance without a daemon). A slot held by a
live run is waited for, saying so, and the cycle gives up with a clear error after the
configured time instead of hanging. A killed run's child process (its dbt build) may still hold
the DuckDB file: the next run waits for it, saying so, within a bound. Only the instance's
public API is used
(`report_run_failed`, the event log storage's concurrency methods).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg
import duckdb

ENDED = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)
WAIT_REPORT_SECONDS = 30.0  # a waiting run says again what it waits for this often

Say = Callable[[str], None]


class PoolBusyError(RuntimeError):
    """A live run keeps a pool slot this cycle needs; one line, fit for a user."""

    def __init__(self, message: str, holders: str = "") -> None:
        super().__init__(message)
        self.holders = holders  # 'pool X held by run R (step S)'


def job_pools(job: dg.JobDefinition) -> list[str]:
    """The concurrency pools the job's steps run in (e.g. `duckdb_writer`)."""
    return sorted({d.pool for d in job.all_node_defs if getattr(d, "pool", None)})


def release_dead_run(instance: dg.DagsterInstance, run_id: str, why: str) -> str | None:
    """Mark a run whose process is gone as failed and free its pool slots.

    Returns a line for the user, or None when there was nothing to do (unknown run, or one that
    has ended and holds no slot).
    """
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    storage = instance.event_log_storage
    holds_slots = run_id in storage.get_concurrency_run_ids()
    if run.status in ENDED and not holds_slots:
        return None
    if run.status not in ENDED:
        instance.report_run_failed(run, f"marked failed by the next books cycle: {why}")
    storage.free_concurrency_slots_for_run(run_id)
    return (
        f"previous Dagster run {run_id} is taken as dead ({why}): marked failed, its pool slots "
        "freed; this run does again what it left unfinished (applied changes are not resent)"
    )


def free_slots_of_ended_runs(instance: dg.DagsterInstance, pools: Iterable[str]) -> list[str]:
    """Free slots still claimed by runs that have ended; a line per run freed."""
    storage = instance.event_log_storage
    freed = []
    for pool in pools:
        for run_id in sorted({c.run_id for c in storage.get_concurrency_info(pool).claimed_slots}):
            run = instance.get_run_by_id(run_id)
            if run is None or run.status in ENDED:
                storage.free_concurrency_slots_for_run(run_id)
                status = "unknown" if run is None else run.status.value
                freed.append(f"freed pool {pool} slots of ended Dagster run {run_id} ({status})")
    return freed


def _blockers(instance: dg.DagsterInstance, pools: Iterable[str], run_id: str) -> list[str]:
    """'pool X held by run R (step S)' for every pool whose slots other runs fill."""
    storage = instance.event_log_storage
    out = []
    for pool in pools:
        info = storage.get_concurrency_info(pool)
        limit = info.limit if info.limit is not None else info.slot_count
        others = [c for c in info.claimed_slots if c.run_id != run_id]
        if limit is not None and others and len(others) >= limit:
            held = ", ".join(f"run {c.run_id} (step {c.step_key})" for c in others)
            out.append(f"pool {pool} held by {held}")
    return out


def wait_for_pools(
    instance: dg.DagsterInstance,
    pools: Iterable[str],
    run_id: str,
    *,
    wait_seconds: float,
    say: Say,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once no other run fills a pool this run needs; say what it waits for meanwhile.

    Raises `PoolBusyError` naming the holders after `wait_seconds`.
    """
    pools = list(pools)
    deadline = time.monotonic() + wait_seconds
    next_report = 0.0
    while blockers := _blockers(instance, pools, run_id):
        now = time.monotonic()
        if now >= next_report and wait_seconds > 0:  # said at least once, however slow the check
            left = max(deadline - now, 0)
            say(f"waiting for {'; '.join(blockers)} (giving up in {left:.0f}s)")
            next_report = now + WAIT_REPORT_SECONDS
        if now >= deadline:
            raise PoolBusyError(
                f"{'; '.join(blockers)}: waited {wait_seconds:g}s, this cycle did not start. If "
                "that run is dead, mark it failed in the Dagster UI (its slots are then freed "
                "at the next start); otherwise try again when it finishes, or pass a longer "
                "--wait",
                holders="; ".join(blockers),
            )
        sleep(poll_seconds)


def wait_for_blocked_step(
    instance: dg.DagsterInstance,
    pool: str,
    step_key: str,
    run_id: str,
    *,
    wait_seconds: float,
    say: Say,
) -> None:
    """A step of a running run that Dagster holds back at `pool`'s limit: wait visibly, then
    give up.

    Why: Dagster's in-process executor waits for a slot with no end and reports it once. Called
    from the run's event listener (in the executing thread), so returning lets the step claim its
    slot, and `PoolBusyError` stops the run (failed, its queued claim withdrawn by Dagster).
    """
    try:
        wait_for_pools(
            instance,
            [pool],
            run_id,
            wait_seconds=wait_seconds,
            say=lambda line: say(f"step {step_key} {line}"),
        )
    except PoolBusyError as exc:
        raise PoolBusyError(
            f"step {step_key} gave up after {wait_seconds:g}s: {exc.holders}. This run stops "
            "here, failed; once that run ends (if it is dead, mark it failed in the Dagster "
            "UI), run the same date again: it finishes this one and sends no applied change "
            "twice. Pass a longer --wait to wait longer"
        ) from None


def leftover_dbt_processes(warehouse: Path, proc: Path = Path("/proc")) -> list[int]:
    """The dbt processes still working on `warehouse` (their environment names it), on systems
    with /proc; empty elsewhere. A dbt build opens and closes the DuckDB file model by model, so
    probing the file's lock alone can catch it between two models."""
    if not proc.is_dir():
        return []
    wanted = {f"BOOKS_WAREHOUSE={path}".encode() for path in (warehouse, warehouse.resolve())}
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if any(Path(arg.decode(errors="replace")).name == "dbt" for arg in argv[:2]) and (
            wanted.intersection(environ)
        ):
            found.append(int(entry.name))
    return sorted(found)


def wait_for_warehouse_file(
    warehouse: Path,
    *,
    wait_seconds: float,
    say: Say,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once the DuckDB file opens for writing; say who holds it meanwhile.

    Why: a killed cycle's child process (the dbt build) outlives it, keeps the file's lock and
    exits when its work is done. Raises `PoolBusyError` naming the lock holder after
    `wait_seconds`.
    """
    if not warehouse.exists():
        return
    deadline = time.monotonic() + wait_seconds
    next_report = 0.0
    while True:
        leftovers = leftover_dbt_processes(warehouse)
        try:
            duckdb.connect(str(warehouse)).close()
            if not leftovers:
                return
            who = "dbt pid " + ", ".join(str(pid) for pid in leftovers)
            who += " (a killed run's dbt build runs on until done)"
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            holder = re.search(r"PID (\d+)", str(exc))
            who = f"pid {holder.group(1)}" if holder else "another process"
        now = time.monotonic()
        if now >= next_report and wait_seconds > 0:  # said at least once, however slow the check
            left = max(deadline - now, 0)
            say(f"waiting for {who} to release {warehouse} (giving up in {left:.0f}s)")
            next_report = now + WAIT_REPORT_SECONDS
        if now >= deadline:
            raise PoolBusyError(
                f"warehouse {warehouse} is still locked by {who}: waited {wait_seconds:g}s, this "
                "cycle did not start. Let it finish (or stop it) and run again"
            )
        sleep(poll_seconds)
