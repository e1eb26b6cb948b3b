"""The `books_quality` job and its schedule: the dbt data-quality tests that are not gates."""

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslatorSettings, DbtCliResource

from orchestration.cadences import schedule_default_status
from orchestration.cycle import DUCKDB_POOL, PolicyResource
from orchestration.dbt_assets import BooksDbtTranslator
from orchestration.dbt_cli import dbt_environment, failed_nodes
from orchestration.dbt_parse import dbt_manifest_path, warehouse_target
from orchestration.resources import WarehouseResource
from policy import Policy

# dbt selector (dbt_project/selectors.yml): the data-quality tests this job runs.
QUALITY_SELECTOR = "books_quality"
QUALITY_JOB_NAME = "books_quality"
# The quality tests are not asset checks (a check would join the cycle's gates); their results
# are recorded as observations of the tested assets.
QUALITY_TRANSLATOR = BooksDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=False)
)


@dg.op(name="dbt_quality_tests", pool=DUCKDB_POOL, out={})
def dbt_quality_tests(
    context: dg.OpExecutionContext,
    dbt: DbtCliResource,
    policy: PolicyResource,
    warehouse: WarehouseResource,
) -> Iterator[Any]:
    """Run the data-quality tests (selector `books_quality`) on the tables the last cycle built.

    Not a gate: nothing waits on it. Results are recorded on the tested assets; an error-level
    failure fails this run (visible and alertable) and never touches a write-back.
    """
    manifest = json.loads(dbt_manifest_path().read_text())
    args = ["test", "--selector", QUALITY_SELECTOR]
    with dbt_environment(str(warehouse.warehouse_path), policy.dbt_env()):
        invocation = dbt.cli(
            args,
            context=context,
            manifest=manifest,
            dagster_dbt_translator=QUALITY_TRANSLATOR,
            raise_on_error=False,
            target_path=warehouse_target(str(warehouse.warehouse_path)),
        )
        yield from invocation.stream()
    if not invocation.is_successful():
        failures = failed_nodes(invocation)
        raise dg.Failure(
            description=f"{len(failures)} data-quality tests failed: " + "; ".join(failures[:10]),
            metadata={"failed_tests": len(failures)},
        )


@dg.job(
    name=QUALITY_JOB_NAME,
    description="The dbt data-quality tests that are not gates (dbt selector books_quality), on "
    "their own schedule; they never block a write-back.",
)
def books_quality_job() -> None:
    dbt_quality_tests()


def build_quality_schedule(policy: Policy) -> dg.ScheduleDefinition:
    """The `books_quality` job's schedule (books.yml `cadences.quality`, daily by default);
    the on/off switch is read again on every tick, like the other cadences."""
    cadence = policy.cadences.quality

    @dg.schedule(
        name="books_quality_schedule",
        cron_schedule=cadence.cron,
        job=books_quality_job,
        execution_timezone="UTC",
        default_status=schedule_default_status(policy, cadence.enabled),
        description="Data-quality dbt tests (not gates) on the tables the last cycle built.",
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext, policy: PolicyResource
    ) -> dg.RunRequest | dg.SkipReason:
        if not policy.policy.cadences.quality.enabled:
            return dg.SkipReason(f"cadence 'quality' is switched off in {policy.resolved_path()}")
        tick = context.scheduled_execution_time
        return dg.RunRequest(run_key=f"quality:{tick.isoformat() if tick else 'manual'}")

    return _schedule
