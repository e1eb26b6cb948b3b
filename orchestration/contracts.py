"""Data contracts as blocking Dagster asset checks on the raw CRM tables.

One multi-asset check runs `contracts.run_contracts` once after ingestion (referential rules
need every raw table) and reports on each raw asset. Bad rows are quarantined and the cycle goes
on without them; a table-level failure on ANY raw table fails every check, and because the
checks are blocking, Dagster skips everything downstream (dbt, decisions, write-back).
GX is imported inside `run_contracts`, so loading the definitions stays fast.
"""

from collections.abc import Iterator

import dagster as dg
from dagster import AssetCheckExecutionContext

from orchestration.cycle import PolicyResource, as_of_date_of
from orchestration.ingest import POOL, SALESFORCE_KEYS
from orchestration.resources import WarehouseResource

CHECK_NAME = "data_contract"


@dg.multi_asset_check(
    name="raw_salesforce_contracts",
    specs=[
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            blocking=True,
            description=f"Data contract of {obj}: well-formed ids, required values, picklists, "
            "ranges and references (bad rows -> ops.quarantine); frozen columns and row count "
            "vs the previous load (a failure on any raw table blocks the cycle).",
        )
        for obj, key in SALESFORCE_KEYS.items()
    ],
    pool=POOL,
)
def raw_salesforce_contracts(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, policy: PolicyResource
) -> Iterator[dg.AssetCheckResult]:
    """Quarantine bad CRM rows; block downstream when a raw table breaks its contract."""
    from contracts import run_contracts

    # The books run id (not Dagster's), so quarantine rows line up with decisions and sync_log.
    op_context = context.op_execution_context
    run_id = policy.run_id_for(op_context, as_of_date_of(op_context))
    report = run_contracts(warehouse.warehouse_path, run_id)
    context.log.info(report.summary())
    for obj, key in SALESFORCE_KEYS.items():
        table = report.tables[obj]
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=CHECK_NAME,
            passed=report.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if report.passed else "; ".join(report.failures)[:2000],
            metadata={
                "live_rows": table.live_rows,
                "deleted_rows": table.deleted_rows,
                "quarantined_rows": table.quarantined_rows,
                "row_count_floor": table.min_rows,
                "table_failures": dg.MetadataValue.json(list(table.failures)),
                "blocked_by": dg.MetadataValue.json(report.failures),
            },
        )


# What definitions.py adds to `asset_checks=[...]`.
CONTRACT_CHECKS = [raw_salesforce_contracts]
