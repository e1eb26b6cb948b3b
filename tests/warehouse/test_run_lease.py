"""Every Dagster run that writes the warehouse holds the lease, not only
`books run`: a scheduled run takes it through the warehouse resource, keyed by its run id; the
runner's own run joins the lease the runner took; a busy warehouse is one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from contracts.overrides import TAG_ACCEPT_REASON, TAG_ACCEPT_ROW_DROP, TAG_ACCEPTED_BY
from orchestration.resources import TAG_RUN_ID, WarehouseResource
from tests.homes import home_env
from warehouse.lease import acquire, lease_path, read_lease, read_lease_log

ROOT = Path(__file__).resolve().parents[2]


def _job(warehouse: Path, wait: float = 0.0) -> dg.JobDefinition:
    @dg.asset
    def writes(warehouse: WarehouseResource) -> None:
        """Stands for any step writing the warehouse; records who held the lease meanwhile."""
        held = read_lease(warehouse.warehouse_path)
        with duckdb.connect(str(warehouse.warehouse_path)) as con:
            con.execute("create table if not exists seen (run_key varchar)")
            con.execute("insert into seen values (?)", [held.run_key if held else None])

    defs = dg.Definitions(
        assets=[writes],
        jobs=[dg.define_asset_job("job", selection=[writes])],
        resources={"warehouse": WarehouseResource(path=str(warehouse), lease_wait_seconds=wait)},
    )
    return defs.resolve_job_def("job")


def test_a_dagster_run_takes_the_lease_for_itself_and_releases_it(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    result = _job(warehouse).execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select run_key from seen").fetchall() == [(result.run_id,)]
    events = [(e["event"], e["run_key"]) for e in read_lease_log(warehouse)]
    assert events == [("acquired", result.run_id), ("released", result.run_id)]
    assert not lease_path(warehouse).exists()


def test_the_runner_s_own_run_joins_its_lease(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    run_id = str(uuid.uuid4())
    with acquire(warehouse, "books cycle r1", run_key=run_id) as outer:
        result = _job(warehouse).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), run_id=run_id
        )
        assert result.success  # no deadlock: re-entrant for the same run
        assert read_lease(warehouse).token == outer.info.token
    assert [e["event"] for e in read_lease_log(warehouse)] == [
        "acquired", "joined", "left", "released"
    ]  # fmt: skip


def test_a_scheduled_run_waits_then_fails_with_one_clear_line(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    with acquire(warehouse, "books cycle 2025-06-02-1-abc", run_key="runner-run"):
        started = time.monotonic()
        result = _job(warehouse, wait=0.6).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )
        waited = time.monotonic() - started
    assert not result.success and waited >= 0.6
    errors = [
        e.event_specific_data.error.message
        for e in result.all_events
        if getattr(e.event_specific_data, "error", None) is not None
    ]
    line = next(m for m in errors if "is in use by" in m).strip().splitlines()[-1]
    print(f"\nscheduled run's message: {line}")
    assert "'books cycle 2025-06-02-1-abc'" in line and "waited 0.6s" in line
    assert not any("Could not set lock" in m or "Conflicting lock" in m for m in errors)


def test_a_row_drop_override_tag_is_recorded_for_that_run(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    tags = {TAG_RUN_ID: "2025-06-02-1-abc", TAG_ACCEPT_ROW_DROP: "Account",
            TAG_ACCEPTED_BY: "revops@acme.test", TAG_ACCEPT_REASON: "dedupe clean-up"}  # fmt: skip
    result = _job(warehouse).execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags)
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select run_id, object, accepted_by, reason, requested_via from ops.row_drop_overrides"
        ).fetchall()
    assert rows == [("2025-06-02-1-abc", "Account", "revops@acme.test", "dedupe clean-up",
                     f"dagster run {result.run_id}")]  # fmt: skip
    bad = _job(warehouse).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={TAG_RUN_ID: "r2", TAG_ACCEPT_ROW_DROP: "Account"},
        raise_on_error=False,
    )
    assert not bad.success  # who and why are required


# --- two real cycles started at once: `books run` and a scheduled Dagster run -----------------
AS_OF = "2025-06-02"


def _spawn(mode: str, env: dict[str, str], wait: float, logs: Path) -> subprocess.Popen:
    """A cycle worker whose output goes to files (a full pipe would block its logging)."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{mode}.out").open("w") as out, (logs / f"{mode}.err").open("w") as err:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("cycle_worker.py")), mode, AS_OF,
             str(wait)],
            env=env, stdout=out, stderr=err, text=True,
        )  # fmt: skip


def _finish(proc: subprocess.Popen, mode: str, logs: Path, timeout: float) -> tuple[int, str, str]:
    code = proc.wait(timeout=timeout)
    return code, (logs / f"{mode}.out").read_text(), (logs / f"{mode}.err").read_text()


def _intervals(warehouse: Path) -> dict[str, tuple[float, float]]:
    """Per lease token: (acquired, released), from the lease log."""
    out: dict[str, list[float]] = {}
    for event in read_lease_log(warehouse):
        if event["event"] in ("acquired", "released"):
            out.setdefault(event["token"], []).append(event["at"])
    assert all(len(v) == 2 for v in out.values()), out
    return {token: (v[0], v[1]) for token, v in out.items()}


@pytest.mark.slow
def test_books_run_and_a_scheduled_run_never_interleave(tmp_path: Path) -> None:
    from local_crm.generator import generate_world
    from policy import resolve_paths

    env = {**os.environ, "PYTHONPATH": str(ROOT), **home_env(tmp_path)}
    paths = resolve_paths(env)
    paths.landing.mkdir()
    generate_world(paths.crm_db, accounts=300, reps=4, seed=5, months=3,
                   as_of=datetime.fromisoformat(AS_OF).date(), landing_dir=paths.landing,
                   policy_path=paths.policy)  # fmt: skip
    logs = tmp_path / "logs"
    procs = {mode: _spawn(mode, env, 900, logs / "both") for mode in ("runner", "schedule")}
    results = {mode: _finish(p, mode, logs / "both", 1800) for mode, p in procs.items()}
    assert [code for code, _o, _e in results.values()] == [0, 0], results
    outs = {
        mode: json.loads(out.strip().splitlines()[-1]) for mode, (_c, out, _e) in results.items()
    }
    assert all(o["success"] for o in outs.values()), outs
    spans = _intervals(paths.warehouse)
    assert len(spans) == 2
    first, second = sorted(spans.values())
    assert first[1] <= second[0], f"the two cycles overlapped: {first} {second}"
    # Each run's warehouse writes (contract runs stamp the wall clock) lie inside its lease.
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        stamps = con.execute(
            "select run_id, epoch(detected_at) from ops.contract_runs order by seq"
        ).fetchall()
    run_of = {o["run_id"] for o in outs.values()}
    assert {r for r, _t in stamps} == run_of
    for _run, at in stamps:
        assert any(start <= at <= end for start, end in spans.values())

    # The loser, either way round, gets one clear line and touches nothing.
    with acquire(paths.warehouse, "books cycle held-by-test", run_key="held"):
        loser = {mode: _spawn(mode, env, 1, logs / "lost") for mode in ("runner", "schedule")}
        lost = {m: _finish(p, m, logs / "lost", 600)[::2] for m, p in loser.items()}
    for mode, (code, err) in lost.items():
        line = err.strip().splitlines()[-1]
        assert code == 3 and "in use by 'books cycle held-by-test'" in line, (mode, err)
        assert "Traceback" not in err and "Could not set lock" not in err
    print(f"\nsingle writer: lease spans {first} then {second} "
          f"(gap {second[0] - first[1]:.2f}s); losers: "
          f"{ {m: e.strip().splitlines()[-1] for m, (_c, e) in lost.items()} }")  # fmt: skip
