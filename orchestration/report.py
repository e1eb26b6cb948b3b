"""The report asset: the HTML run report for people, built after the write-back."""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from orchestration.cycle import DUCKDB_POOL, TAG_DRY_RUN, PolicyResource, as_of_date_of, flag_of
from orchestration.report_html import write_report
from orchestration.resources import WarehouseResource

WRITE_BACK_KEY = dg.AssetKey(["salesforce_write_back"])
REPORT_KEY = dg.AssetKey(["books_report"])


def report_path(warehouse: str, as_of: str) -> Path:
    """Reports sit next to the warehouse file: <warehouse dir>/reports/books_report_<date>.html."""
    return Path(warehouse).resolve().parent / "reports" / f"books_report_{as_of}.html"


def build_report_asset(upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The report asset, downstream of the write-back and of every mart it reads."""

    @dg.asset(
        key=REPORT_KEY,
        deps=[WRITE_BACK_KEY, *upstream],
        group_name="report",
        kinds={"html", "python"},
        pool=DUCKDB_POOL,
    )
    def books_report(
        context: dg.AssetExecutionContext,
        policy: PolicyResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        """The run report RevOps and managers read (orchestration.report_html): the books after
        the run beside the before, the run's decisions, held changes, quarantine, hoarding and
        coverage as one HTML file with charts, written after the CRM write-back so it shows the
        books as the reps now see them; a dry run's report says so at the top."""
        as_of = as_of_date_of(context)
        warehouse_file = str(warehouse.warehouse_path)
        out = report_path(warehouse_file, as_of.isoformat())
        run_id = policy.run_id_for(context, as_of)
        dry_run = flag_of(context, TAG_DRY_RUN)
        report = write_report(warehouse_file, out, as_of, run_id, dry_run=dry_run)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(out)),
                "dagster/row_count": int(report.figures["accounts"]),
                "sections": [s.title for s in report.sections],
                **{name: float(value) for name, value in report.figures.items()},
            }
        )

    return books_report
