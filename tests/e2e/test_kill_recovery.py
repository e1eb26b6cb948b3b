"""`books run` killed with SIGKILL at 10 random points of a cycle (extract, dbt, write-back), each
time followed by `books run` for the same date: the runs after a kill go on without manual help
within a bounded time, and the CRM ends where the decisions say, each change written once (0 lost,
0 doubled, 0 stuck), with as many accounts given to reps as one uninterrupted run gives.

The points are drawn with a fixed seed (`BOOKS_KILL_SEED` draws others) and triggered by lines of
the run's own output (a step starting or ending, the n-th dbt node starting), plus a short random
delay. To stay affordable, the 10 kills form 2 chains of 5: each run after a kill is itself the
next point's victim, and the last run of a chain must complete. Points inside a step that calls
the CRM slow its calls (a test harness, tests/e2e/books_with_faults.py) so the kill lands inside
it.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from local_crm.generator import generate_world
from orchestration.pools import ENDED
from policy import resolve_paths
from tests.homes import home_env

pytestmark = [pytest.mark.slow, pytest.mark.long_pole]  # 10 kills + 3 full cycles: ~8 min

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 6, 2)
ACCOUNTS = 300
REPS = 5
RECOVERY_TIMEOUT = 900  # seconds: far above a small world's cycle, far below "forever"
STEP_START_TIMEOUT = 900
INTEGRATION_USERNAME = "integration@books.local"
SEED = int(os.environ.get("BOOKS_KILL_SEED", "20"))
CHAINS, KILLS_PER_CHAIN = 2, 5
EXTRACT_SLOW = ("query*", "jobs/query*")
WRITE_SLOW = ("composite/sobjects*", "jobs/ingest*")
DBT_NODE_START = re.compile(r"\d+ of \d+ START ")


@dataclass(frozen=True)
class KillPoint:
    """Kill `delay` seconds after the `nth` output line matching `marker`."""

    stage: str
    marker: str
    nth: int = 1
    delay: float = 0.0
    slow: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.stage}: {self.marker!r} #{self.nth} +{self.delay}s"


def draw_points(seed: int) -> list[KillPoint]:
    """10 points across the stages (3 in the extract, 3 in dbt, 4 around the write-back)."""
    rng = random.Random(seed)
    stages = ["extract"] * 3 + ["dbt"] * 3 + ["write_back"] * 4
    rng.shuffle(stages)
    return [_draw(stage, rng) for stage in stages]


def _draw(stage: str, rng: random.Random) -> KillPoint:
    delay = round(rng.uniform(0, 2.5), 2)
    if stage == "extract":
        step = rng.choice(["landing_files", "run_context", "salesforce_raw", "salesforce_raw"])
        slow = EXTRACT_SLOW if step == "salesforce_raw" else ()
        return KillPoint(stage, f"step {step} started", delay=delay, slow=slow)
    if stage == "dbt":
        if rng.random() < 0.25:
            return KillPoint(stage, "step dbt_models started", delay=delay)
        return KillPoint(stage, DBT_NODE_START.pattern, nth=rng.randint(1, 220))
    step = rng.choice(
        ["sync_salesforce__accounts_write_back_guard", "salesforce_write_back",
         "salesforce_write_back", "books_report"]
    )  # fmt: skip
    slow = WRITE_SLOW if step == "salesforce_write_back" else ()
    return KillPoint(stage, f"step {step} started", delay=delay, slow=slow)


POINTS = draw_points(SEED)


def test_the_points_cover_every_stage() -> None:
    assert {p.stage for p in POINTS} == {"extract", "dbt", "write_back"}
    assert len(POINTS) == CHAINS * KILLS_PER_CHAIN == 10


def books_command(*args: str, slow: list[str] = ()) -> list[str]:
    harness = [sys.executable, "-m", "tests.e2e.books_with_faults"]
    for pattern in slow:
        harness += ["--slow", pattern]
    return [*harness, "--", *args]


def kill_at(command: list[str], env: dict[str, str], point: KillPoint) -> list[str]:
    """Start `command`, SIGKILL it at `point`; its output."""
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reached = threading.Event()
    marker = re.compile(point.marker)

    def read() -> None:
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            lines.append(line.rstrip())
            if not reached.is_set() and marker.search(line):
                seen += 1
                if seen >= point.nth:
                    reached.set()
        reached.set()  # the run ended: the check below says it ended before the kill

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert reached.wait(STEP_START_TIMEOUT), f"{point} never reached:\n" + "\n".join(
            lines[-30:]
        )
        time.sleep(point.delay)
        assert proc.poll() is None, f"the run ended before the kill at {point}:\n" + "\n".join(
            lines[-30:]
        )
    finally:
        proc.send_signal(signal.SIGKILL)  # not if it has already ended (and been reaped)
        proc.wait()
        reader.join(timeout=10)
    return lines


def _integration_user(crm_db: Path) -> str:
    with sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True) as con:
        return con.execute(
            'SELECT "Id" FROM "User" WHERE "Username" = ?', (INTEGRATION_USERNAME,)
        ).fetchone()[0]


def given_to_reps(crm_db: Path) -> int:
    """Accounts the write-back moved from a pool user to a rep, as the CRM's history shows."""
    with sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True) as con:
        return con.execute(
            'SELECT count(DISTINCT h."AccountId") FROM "AccountHistory" h '
            'JOIN "User" u ON u."Id" = h."NewValue" '
            'WHERE h."Field" = \'OwnerId\' AND h."CreatedById" = ? '
            "AND coalesce(u.\"Book_Role__c\", '') NOT IN ('', 'Pool')",
            (_integration_user(crm_db),),
        ).fetchone()[0]


def make_world(home: Path) -> dict[str, str]:
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
    return make_world(tmp_path)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> int:
    """What one uninterrupted run of the same world gives reps: the yardstick of 0 lost."""
    env = make_world(tmp_path_factory.mktemp("uninterrupted"))
    run = ["run", "--as-of", AS_OF.isoformat(), "--override-guard"]
    done = subprocess.run(
        books_command(*run),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RECOVERY_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    given = given_to_reps(resolve_paths(home_env(Path(env["BOOKS_WAREHOUSE"]).parent)).crm_db)
    assert given, "an uninterrupted run gave reps nothing: the comparison would prove nothing"
    return given


@pytest.mark.parametrize("chain", range(CHAINS))
def test_runs_killed_at_random_points_are_finished_by_the_next_run_of_the_same_date(
    world: dict[str, str], uninterrupted: int, chain: int
) -> None:
    points = POINTS[chain * KILLS_PER_CHAIN : (chain + 1) * KILLS_PER_CHAIN]
    run = ["run", "--as-of", AS_OF.isoformat(), "--override-guard"]
    for point in points:
        print(f"seed {SEED}, chain {chain}: kill at {point}")
        # -v: the run also prints dbt's node lines, which some points wait for
        kill_at(books_command(*run, "-v", slow=point.slow), world, point)

    try:
        again = subprocess.run(
            books_command(*run), cwd=REPO, env=world, capture_output=True, text=True,
            timeout=RECOVERY_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-3000:]
        pytest.fail(f"the run after the kills hung for {RECOVERY_TIMEOUT}s:\n{tail!r}")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]

    after = outcome(world)
    assert after.planned, "the cycle planned no change: the test would prove nothing"
    # Every change the last plan holds reached an outcome (superseded: re-planned away).
    assert after.stuck == []
    # Nothing stuck in Dagster either: every killed run is marked ended, no pool slot held.
    assert after.runs_not_ended == []
    assert after.slots_held == set()
    # 0 lost: the CRM holds every value the plan wants; 0 doubled: each owner changed once.
    assert after.lost == []
    assert after.doubled == []
    # Nothing lost to re-planning either: what a killed attempt decided but never wrote is
    # decided again, so reps end the date with as many accounts as one uninterrupted run gives.
    assert after.given_to_reps == uninterrupted


@dataclass
class Outcome:
    """Where a world stands after its last run: what the CRM and Dagster hold."""

    planned: int  # changes in the write ledger
    stuck: list[tuple]  # changes with no final outcome
    lost: list[tuple]  # changes the plan wants that the CRM does not hold
    doubled: list[tuple]  # accounts whose owner the integration user changed more than once
    given_to_reps: int
    runs_not_ended: list[str]
    slots_held: set[str]


def outcome(world: dict[str, str]) -> Outcome:
    """Read the world's CRM, warehouse and Dagster instance (also for benchmarks/reliability.py)."""
    paths = resolve_paths(home_env(Path(world["BOOKS_WAREHOUSE"]).parent))
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        changes = con.execute(
            "select sobject, record_id, after_json, state from ops.write_ledger"
        ).fetchall()
    stuck = [c for c in changes if c[3] not in ("applied", "unchanged", "superseded")]
    instance = dg.DagsterInstance.from_config(world["DAGSTER_HOME"])
    crm = sqlite3.connect(f"file:{paths.crm_db}?mode=ro", uri=True)
    try:
        lost = []
        for sobject, record_id, after_json, _ in (c for c in changes if c[3] != "superseded"):
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
    return Outcome(
        planned=len([c for c in changes if c[3] != "superseded"]),
        stuck=stuck,
        lost=lost,
        doubled=doubled,
        given_to_reps=given_to_reps(paths.crm_db),
        runs_not_ended=[r.run_id for r in instance.get_runs() if r.status not in ENDED],
        slots_held=set(instance.event_log_storage.get_concurrency_run_ids()),
    )
