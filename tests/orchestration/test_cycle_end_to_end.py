"""The whole `books_cycle` materialises in-process on a small generated world."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import pytest

from local_crm.generator import generate_world
from orchestration.cycle import make_run_id
from orchestration.definitions import build_definitions
from orchestration.quality import QUALITY_JOB_NAME
from orchestration.runner import analytics_path, run_cycle
from policy import load_policy, policy_version, resolve_paths
from tests.homes import home_env
from warehouse.lease import read_lease
from warehouse.publish import RUN_COLUMN, published_run

AS_OF = date(2025, 6, 2)
ACCOUNTS = 1_500
REPS = 8


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("cycle")
    paths = resolve_paths(home_env(home))
    paths.landing.mkdir(parents=True)
    world = generate_world(
        paths.crm_db,
        accounts=ACCOUNTS,
        reps=REPS,
        seed=7,
        as_of=AS_OF,
        landing_dir=paths.landing,
        policy_path=paths.policy,
    )
    lines: list[str] = []
    summary = run_cycle(
        AS_OF,
        dry_run=False,
        override_guard=True,
        progress=lambda message, *_, **__: lines.append(message),
        paths=paths,
        instance=dg.DagsterInstance.ephemeral(),
    )
    return paths, world, summary, lines


@pytest.mark.slow
def test_books_cycle_materialises_every_step(cycle) -> None:
    paths, world, summary, lines = cycle
    assert summary.success, summary.render()
    assert summary.failed_steps == []
    assert any(line.startswith("step dbt_models done in ") for line in lines)  # per step
    version = policy_version(load_policy(paths.policy))
    assert summary.run_id == make_run_id(AS_OF, version, 1)
    assert summary.rows_ingested["salesforce/account"] == world.counts["Account"]
    assert summary.rows_ingested["salesforce/user"] == world.counts["User"]
    assert sum(summary.accounts_by_state.values()) > 0
    assert summary.report is not None
    assert summary.report.read_text().count("<figure class='chart'") >= 6
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        recorded = con.execute(
            "select decision_kind, count(*) from decisions.book_decisions where run_id = ? "
            "group by 1",
            [summary.run_id],
        ).fetchall()
    assert dict(recorded) == summary.decisions_by_kind
    assert summary.decisions_by_kind.get("distribute", 0) > 0
    assert "write-back" in summary.render()


@pytest.mark.slow
def test_cycle_writes_the_crm_publishes_and_releases_the_lease(cycle) -> None:
    paths, _, summary, _ = cycle
    assert summary.success, summary.render()
    assert summary.write_back.get("applied", 0) > 0  # launch day, guard overridden
    assert summary.analytics == analytics_path(paths.warehouse)
    assert f"analytics: {summary.analytics}" in summary.render()
    assert published_run(summary.analytics) == summary.run_id
    with duckdb.connect(str(summary.analytics), read_only=True) as con:
        runs = con.execute(f"select distinct {RUN_COLUMN} from marts.accounts").fetchall()
    assert runs == [(summary.run_id,)]
    assert read_lease(paths.warehouse) is None  # the next cycle may start


@pytest.mark.slow
def test_the_quality_job_tests_the_tables_the_cycle_built(cycle) -> None:
    """The `books_quality` job runs dbt's data-quality tests with the cycle's policy and
    warehouse (both reach dbt through the environment, as in the cycle)."""
    paths, _world, _summary, _lines = cycle
    job = build_definitions(paths).resolve_job_def(QUALITY_JOB_NAME)

    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)

    failure = next((e for e in result.all_events if e.is_step_failure), None)
    assert result.success, failure.event_specific_data.error.message if failure else result
    tested = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert tested, "no data-quality test result was recorded on the tested assets"
