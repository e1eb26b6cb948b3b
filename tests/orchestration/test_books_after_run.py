"""What the cycle publishes, whoever starts it: the books as the CRM holds them after the run.

One small world, three runs in order: a real `books run` (launch day: it distributes and
retrieves), a dry run (must not touch the analytics file), and a scheduled run started through
Dagster's test helpers (must refresh the analytics file, as of the CRM's clock).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from local_crm.generator import generate_world
from orchestration.cycle import TAG_AS_OF_DATE, TAG_RUN_ID
from orchestration.definitions import JOB_NAME, build_definitions
from orchestration.runner import analytics_path, run_cycle
from policy import resolve_paths
from tests.homes import home_env
from warehouse.publish import published_run

AS_OF = date(2025, 6, 2)


def _crm_owners(crm_db: Path) -> dict[str, str]:
    with sqlite3.connect(crm_db) as con:
        return dict(con.execute('select Id, OwnerId from "Account" where IsDeleted = 0'))


def _published(analytics: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(analytics), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("after")
    paths = resolve_paths(home_env(home))
    paths.landing.mkdir(parents=True)
    generate_world(
        paths.crm_db,
        accounts=600,
        reps=6,
        seed=11,
        as_of=AS_OF,
        landing_dir=paths.landing,
        policy_path=paths.policy,
    )
    instance = dg.DagsterInstance.ephemeral()
    real = run_cycle(AS_OF, override_guard=True, paths=paths, instance=instance)
    return paths, instance, real


@pytest.mark.slow
def test_published_books_are_the_books_after_the_write_back(world) -> None:
    paths, _, real = world
    assert real.success, real.render()
    moved = {k: real.decisions_by_kind.get(k, 0) for k in ("distribute", "retrieve")}
    assert moved["distribute"] > 0 and moved["retrieve"] > 0, real.decisions_by_kind
    analytics = analytics_path(paths.warehouse)
    assert real.analytics == analytics and published_run(analytics) == real.run_id
    crm = _crm_owners(paths.crm_db)
    accounts = _published(analytics, "select account_id, owner_id from marts.accounts")
    assert dict(accounts) == crm
    changed = _published(
        analytics, "select count(*) from marts.accounts where owner_id != owner_id_before"
    )
    assert changed[0][0] > 0  # where the run started stays beside
    # A rep's published book is what the rep owns in the CRM after the run.
    owned: dict[str, int] = {}
    for owner in crm.values():
        owned[owner] = owned.get(owner, 0) + 1
    reps = _published(analytics, "select rep_id, owned_count from marts.reps")
    assert reps and {rep: n for rep, n in reps} == {rep: owned.get(rep, 0) for rep, _ in reps}


@pytest.mark.slow
def test_dry_run_leaves_the_analytics_file_alone(world) -> None:
    paths, instance, real = world
    analytics = analytics_path(paths.warehouse)
    before = analytics.read_bytes()
    dry = run_cycle(AS_OF, dry_run=True, attempt=2, paths=paths, instance=instance)
    assert dry.success, dry.render()
    assert dry.analytics is None
    assert analytics.read_bytes() == before and published_run(analytics) == real.run_id


@pytest.mark.slow
def test_scheduled_run_refreshes_the_analytics_file_as_of_the_crm_clock(world) -> None:
    paths, instance, real = world
    defs = build_definitions(paths)
    schedule = defs.resolve_schedule_def("retrieval_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 12, 7, 6, tzinfo=UTC),
        resources={"policy": defs.resources["policy"], "crm": defs.resources["crm"]},
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.tags[TAG_AS_OF_DATE] == AS_OF.isoformat()  # the CRM's clock, not 2026
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=False
    )
    assert result.success
    analytics = analytics_path(paths.warehouse)
    assert published_run(analytics) == request.tags[TAG_RUN_ID] != real.run_id
