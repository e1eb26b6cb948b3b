"""The run-context asset: the run's as-of date, id and mode as rows dbt reads.

Every model computes as of this run's date from ops.run_context (warehouse/run_context.py),
not from dbt vars, which would cost dbt a full reparse every run.
"""

from collections.abc import Iterator

import dagster as dg

from orchestration.cycle import (
    DUCKDB_POOL,
    TAG_DRY_RUN,
    PolicyResource,
    as_of_date_of,
    cycle_ids_of,
    dbt_cycle_mode,
    flag_of,
    mode_of,
)
from orchestration.resources import WarehouseResource
from warehouse.lease import connect_warehouse
from warehouse.run_context import (
    RunContext,
    ensure_run_context_tables,
    read_run_context,
    write_run_context,
)

# The asset group of the run context and of the dbt models that transform (dbt_assets.py).
GROUP_TRANSFORM = "transform"
RUN_CONTEXT_KEY = dg.AssetKey(["ops", "run_context"])
RUN_CYCLE_IDS_KEY = dg.AssetKey(["ops", "run_cycle_ids"])


def run_context_for(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, policy: PolicyResource
) -> RunContext:
    """This run's ops.run_context row, from its tags (as-of date, run id, mode, ids)."""
    as_of = as_of_date_of(context)
    return RunContext(
        run_id=policy.run_id_for(context, as_of),
        as_of_date=as_of,
        policy_version=policy.version,
        cycle_mode=dbt_cycle_mode(mode_of(context)),
        cycle_ids=cycle_ids_of(context),
        dry_run=flag_of(context, TAG_DRY_RUN),
    )


def store_run_context(warehouse: str, wanted: RunContext) -> bool:
    """Write `wanted` to ops.run_context / ops.run_cycle_ids unless they already hold it.

    Returns True when it wrote. Both the `ops/run_context` asset and the dbt step call this,
    so a run that materialises the dbt models without that asset still builds as of its own
    date, never the previous run's.
    """
    with connect_warehouse(warehouse) as con:
        ensure_run_context_tables(con)  # and the other ops tables dbt reads
        if read_run_context(con) == wanted:
            return False
        write_run_context(
            con,
            wanted.run_id,
            wanted.as_of_date,
            wanted.policy_version,
            wanted.cycle_mode,
            wanted.cycle_ids,
            wanted.dry_run,
        )
    return True


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RUN_CONTEXT_KEY,
            group_name=GROUP_TRANSFORM,
            kinds={"duckdb"},
            metadata={"dagster/table_name": "ops.run_context"},
            description="The run's as-of date, run id, policy version and cycle mode (one row).",
        ),
        dg.AssetSpec(
            RUN_CYCLE_IDS_KEY,
            group_name=GROUP_TRANSFORM,
            kinds={"duckdb"},
            metadata={"dagster/table_name": "ops.run_cycle_ids"},
            description="The Signal__c / Account ids an out-of-cycle (signals, returns) run is about.",
        ),
    ],
    name="run_context",
    pool=DUCKDB_POOL,
)
def run_context_asset(
    context: dg.AssetExecutionContext, policy: PolicyResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """The run's parameters as data for dbt: every model computes as of this run's date and
    stamps this run's id, read from ops.run_context (not dbt vars, which would cost dbt a full
    reparse every run)."""
    wanted = run_context_for(context, policy)
    store_run_context(str(warehouse.warehouse_path), wanted)
    context.log.info(
        f"run context: {wanted.run_id} as of {wanted.as_of_date} ({wanted.cycle_mode}, "
        f"{len(wanted.cycle_ids)} ids)"
    )
    yield dg.MaterializeResult(
        asset_key=RUN_CONTEXT_KEY,
        metadata={
            "run_id": wanted.run_id,
            "as_of_date": wanted.as_of_date.isoformat(),
            "cycle_mode": wanted.cycle_mode,
            "dagster/row_count": 1,
        },
    )
    yield dg.MaterializeResult(
        asset_key=RUN_CYCLE_IDS_KEY, metadata={"dagster/row_count": len(wanted.cycle_ids)}
    )
