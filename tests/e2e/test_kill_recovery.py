"""A `books run` killed with SIGKILL mid-cycle, then `books run` for the same date: the second
run finishes on its own within a bounded time, and the CRM ends where the decisions say, each
change written once (0 lost, 0 doubled, 0 stuck).

Each kill point slows the CRM calls of one step (a test harness, tests/e2e/books_with_faults.py)
and kills the process once that step has started, so the kill lands inside it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from local_crm.generator import generate_world
from policy import resolve_paths
from tests.homes import home_env

pytestmark = [pytest.mark.slow, pytest.mark.long_pole]  # 3 kill points, 2 cycles each: ~5 min

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 6, 2)
ACCOUNTS = 300
REPS = 5
RECOVERY_TIMEOUT = 600  # seconds: far above a small world's cycle, far below "forever"
STEP_START_TIMEOUT = 600
INTEGRATION_USERNAME = "integration@books.local"

# kill point: (step whose start triggers the kill, CRM calls slowed so the step is still busy)
KILL_POINTS = {
    "extract": ("salesforce_raw", ["query*", "jobs/query*"]),
    "dbt": ("dbt_models", []),  # the dbt build runs far longer than the 2 s before the kill
    "write_back": ("salesforce_write_back", ["composite/sobjects*", "jobs/ingest*"]),
}


def _books(*args: str, slow: list[str] = ()) -> list[str]:
    harness = [sys.executable, "-m", "tests.e2e.books_with_faults"]
    for pattern in slow:
        harness += ["--slow", pattern]
    return [*harness, "--", *args]


def _kill_when_started(command: list[str], env: dict[str, str], step: str) -> list[str]:
    """Start `command`, SIGKILL it a moment after `step started` is printed; its output."""
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if f"step {step} started" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(STEP_START_TIMEOUT), "\n".join(lines[-30:])
        time.sleep(2.0)  # inside the step: its CRM calls are slowed far beyond this
        assert proc.poll() is None, "the run ended before the kill:\n" + "\n".join(lines[-30:])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(timeout=10)
    return lines


def _integration_user(crm_db: Path) -> str:
    with sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True) as con:
        return con.execute(
            'SELECT "Id" FROM "User" WHERE "Username" = ?', (INTEGRATION_USERNAME,)
        ).fetchone()[0]


def _given_to_reps(crm_db: Path) -> int:
    """Accounts the write-back moved from a pool user to a rep, as the CRM's history shows."""
    with sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True) as con:
        return con.execute(
            'SELECT count(DISTINCT h."AccountId") FROM "AccountHistory" h '
            'JOIN "User" u ON u."Id" = h."NewValue" '
            'WHERE h."Field" = \'OwnerId\' AND h."CreatedById" = ? '
            "AND coalesce(u.\"Book_Role__c\", '') NOT IN ('', 'Pool')",
            (_integration_user(crm_db),),
        ).fetchone()[0]


def _make_world(home: Path) -> dict[str, str]:
    env = {**os.environ, **home_env(home), "PYTHONPATH": str(REPO)}
    env.pop("BOOKS_POLICY", None)
    paths = resolve_paths(home_env(home))
    paths.landing.mkdir(parents=True)
    generate_world(
        paths.crm_db,
        accounts=ACCOUNTS,
        reps=REPS,
        seed=5,
        months=3,
        as_of=AS_OF,
        landing_dir=paths.landing,
        policy_path=paths.policy,
    )
    return env


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    return _make_world(tmp_path)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> int:
    """What one uninterrupted run of the same world gives reps: the yardstick of 0 lost."""
    env = _make_world(tmp_path_factory.mktemp("uninterrupted"))
    run = ["run", "--as-of", AS_OF.isoformat(), "--override-guard"]
    done = subprocess.run(
        _books(*run), cwd=REPO, env=env, capture_output=True, text=True, timeout=RECOVERY_TIMEOUT
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    given = _given_to_reps(resolve_paths(home_env(Path(env["BOOKS_WAREHOUSE"]).parent)).crm_db)
    assert given, "an uninterrupted run gave reps nothing: the comparison would prove nothing"
    return given


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_killed_run_is_finished_by_the_next_run_of_the_same_date(
    world: dict[str, str], uninterrupted: int, point: str
) -> None:
    step, slow = KILL_POINTS[point]
    run = ["run", "--as-of", AS_OF.isoformat(), "--override-guard"]
    # -v: the console shows the detail, where each step's start is logged.
    _kill_when_started(_books(*run, "-v", slow=slow), world, step)

    try:
        again = subprocess.run(
            _books(*run), cwd=REPO, env=world, capture_output=True, text=True,
            timeout=RECOVERY_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-3000:]
        pytest.fail(f"the run after the kill hung for {RECOVERY_TIMEOUT}s:\n{tail!r}")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]

    paths = resolve_paths(home_env(Path(world["BOOKS_WAREHOUSE"]).parent))
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        changes = con.execute(
            "select sobject, record_id, after_json, state from ops.write_ledger"
        ).fetchall()
    assert changes, "the cycle planned no change: the test would prove nothing"
    # Every change the last plan holds reached an outcome (superseded: re-planned away).
    stuck = [c for c in changes if c[3] not in ("applied", "unchanged", "superseded")]
    assert stuck == []
    changes = [c for c in changes if c[3] != "superseded"]
    assert changes

    # 0 lost: the CRM holds every value the plan wants; 0 doubled: each owner changed once.
    crm = sqlite3.connect(f"file:{paths.crm_db}?mode=ro", uri=True)
    try:
        lost = []
        for sobject, record_id, after_json, _ in changes:
            desired = json.loads(after_json)
            columns = ", ".join(f'"{f}"' for f in desired)
            row = crm.execute(
                f'SELECT {columns} FROM "{sobject}" WHERE "Id" = ?', (record_id,)
            ).fetchone()
            if row is None or list(row) != list(desired.values()):
                lost.append((record_id, desired, row))
        doubled = crm.execute(
            'SELECT "AccountId", count(*) FROM "AccountHistory" WHERE "Field" = \'OwnerId\' '
            'AND "CreatedById" = ? GROUP BY 1 HAVING count(*) > 1',
            (_integration_user(paths.crm_db),),
        ).fetchall()
    finally:
        crm.close()
    assert lost == []
    assert doubled == []
    # Nothing lost to re-planning either: what the killed attempt decided but never wrote is
    # decided again, so reps end the date with as many accounts as one uninterrupted run gives.
    assert _given_to_reps(paths.crm_db) == uninterrupted
