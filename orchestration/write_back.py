"""The write-back step as a Dagster asset: a thin wrapper around `reverse_etl`.

All logic (plan, guards, ledger, batched apply, recovery) lives in `reverse_etl`, which has no
Dagster imports; this module only reads the run's tags (run id, dry run, override), gets a CRM
connection from the `crm` resource and reports the outcome as materialization metadata.
"""

from typing import Any

import dagster as dg

from orchestration.cycle import (
    DUCKDB_POOL,
    TAG_DRY_RUN,
    TAG_OVERRIDE_GUARD,
    PolicyResource,
    as_of_date_of,
    flag_of,
)
from orchestration.transform import WarehousePathResource
from reverse_etl import WritePolicy, apply_plan, plan_write_back

SYNC_MODEL_KEY = dg.AssetKey(["sync_salesforce__accounts"])


def _connection(crm: Any) -> Any:
    """A logged-in connection from the CRM resource (or the connection itself, in tests)."""
    return crm if hasattr(crm, "request") else crm.connect()


@dg.asset(
    key=dg.AssetKey(["salesforce_write_back"]),
    deps=[SYNC_MODEL_KEY],
    group_name="write_back",
    kinds={"salesforce", "python"},
    pool=DUCKDB_POOL,
)
def salesforce_write_back(
    context: dg.AssetExecutionContext,
    policy: PolicyResource,
    warehouse_path: WarehousePathResource,
    crm: dg.ResourceParam[Any],
) -> dg.MaterializeResult:
    """Write this run's ownership and book-status changes to the CRM, exactly once each.

    The plan is stored in the warehouse ledger before any call; a dry run stops there, a plan
    blocked by the blast-radius guard stops there unless the run carries the override tag.
    Every attempted change gets one `ops.sync_log` row.
    """
    as_of = as_of_date_of(context)
    run_id = policy.run_id_for(context, as_of)
    warehouse = warehouse_path.resolved_path()
    write_policy = WritePolicy.from_policy(policy.policy)
    plan = plan_write_back(warehouse, run_id, policy=write_policy)
    dry_run = flag_of(context, TAG_DRY_RUN)
    override = flag_of(context, TAG_OVERRIDE_GUARD)
    if plan.is_blocked and not override and not dry_run:
        # The plan stays stored (ops.write_ledger / ops.write_plans) for a person to read.
        raise dg.Failure(
            description="write-back blocked by the blast-radius guard: "
            + "; ".join(plan.blocked_reasons)
            + f". Re-run with tag {TAG_OVERRIDE_GUARD}=true to write it anyway.",
            metadata={"run_id": run_id, "planned_changes": len(plan.changes)},
        )
    if dry_run:
        # No CRM call at all: neither a connection nor a recovery pass.
        report = apply_plan(None, warehouse, plan, dry_run=True)  # type: ignore[arg-type]
    else:
        report = apply_plan(_connection(crm), warehouse, plan, override_guard=override)
    preview = "\n".join(f"| {a} | {f} | {b} | {t} |" for a, f, b, t in report.plan_rows[:20])
    return dg.MaterializeResult(
        metadata={
            "run_id": run_id,
            "dry_run": dry_run,
            "blocked_reasons": "; ".join(plan.blocked_reasons) or "none",
            "planned_changes": len(plan.changes),
            "moves_to_pool": plan.moves,
            "outcomes": dg.MetadataValue.json(report.outcomes),
            "api_calls": report.api_calls,
            "conflicts": len(report.conflicts),
            "readback_mismatches": report.readback_mismatches,
            "stopped_by_api_budget": report.stopped_by_budget,
            "plan_preview": dg.MetadataValue.md(
                "| account | field | before | after |\n|---|---|---|---|\n" + preview
            ),
        }
    )
