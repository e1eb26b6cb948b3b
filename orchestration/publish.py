"""The analytics file as an asset of the cycle: every successful non-dry run publishes it.

Whatever starts the run (`books run`, a schedule, a sensor, the launchpad), the last step
copies the public tables (marts, decision record, explanations, write-back log) to
`analytics.duckdb` beside the warehouse (`warehouse.publish`), after the write-back and the
report, so analysts read the books as the run left them. A dry run publishes nothing: the
file keeps the last real run's tables.
"""

from collections.abc import Iterator, Sequence

import dagster as dg

from orchestration.cycle import DUCKDB_POOL, TAG_DRY_RUN, PolicyResource, as_of_date_of, flag_of
from orchestration.report import REPORT_KEY, WRITE_BACK_KEY
from orchestration.resources import WarehouseResource
from warehouse.publish import analytics_path, publish

ANALYTICS_KEY = dg.AssetKey(["analytics_file"])


def build_publish_asset(upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The publish asset, downstream of the write-back, the report and every mart."""

    @dg.asset(
        key=ANALYTICS_KEY,
        deps=[WRITE_BACK_KEY, REPORT_KEY, *upstream],
        group_name="report",
        kinds={"duckdb"},
        pool=DUCKDB_POOL,
        output_required=False,
        description="analytics.duckdb beside the warehouse: the public tables of the last "
        "successful non-dry run, swapped in atomically; open it read-only.",
    )
    def analytics_file(
        context: dg.AssetExecutionContext,
        policy: PolicyResource,
        warehouse: WarehouseResource,
    ) -> Iterator[dg.MaterializeResult]:
        """Publish this run's public tables (a dry run leaves the last real run's file)."""
        target = analytics_path(warehouse.warehouse_path)
        if flag_of(context, TAG_DRY_RUN):
            context.log.info(f"dry run: {target} keeps the last real run's tables")
            return
        run_id = policy.run_id_for(context, as_of_date_of(context))
        report = publish(warehouse.warehouse_path, target, run_id)
        yield dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(report.analytics_path)),
                "run_id": run_id,
                "tables": len(report.tables),
                "missing_tables": ", ".join(report.missing) or "none",
            }
        )

    return analytics_file
