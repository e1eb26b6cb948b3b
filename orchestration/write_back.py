"""The write-back step as Dagster definitions: a blocking guard check and a thin write asset.

All logic (plan, guards, ledger, batched apply, recovery) lives in `reverse_etl`, which has no
Dagster imports. One step writes every synced CRM object (Account changes and the Lead owners of
lead routing, `reverse_etl.SYNC_OBJECTS`), with metadata per object. Two gates stand between
the decisions and the CRM:

1. the dbt build (transform + decide): a failing error-level dbt test on any model, including
   the decision and sync models, fails the dbt step, so nothing downstream runs;
2. `write_back_guard`, a blocking asset check on the sync model: it plans the write-back (no CRM
   call) and fails when the blast-radius guard blocks the plan, so the write asset never starts.

The write asset re-plans (idempotent for one run id) and refuses a blocked plan itself too, so a
hand-picked materialisation that skips the check is still safe. Its `outcomes` metadata (printed
by `books run`) are the run's figures: applied, fixed_by_retry, still_failing (with the CRM's
codes and what happens next), conflicts, held. What became of each decision is appended to
`ops.decision_outcomes` (asset `ops/decision_outcomes`; public view book_decision_outcomes).
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from orchestration.cycle import (
    DUCKDB_POOL,
    TAG_DRY_RUN,
    TAG_OVERRIDE_GUARD,
    PolicyResource,
    as_of_date_of,
    flag_of,
    triggered_at_of,
)
from orchestration.resources import CrmOpener, WarehouseResource
from reverse_etl import (
    SYNC_OBJECTS,
    ApplyReport,
    Plan,
    WritePolicy,
    apply_plan,
    ledger,
    plan_write_back,
)
from warehouse.engine import spark_tables_dir

SYNC_MODEL_KEY = dg.AssetKey(["sync_salesforce__accounts"])
SYNC_MODEL_KEYS = [dg.AssetKey([o.model]) for o in SYNC_OBJECTS.values()]
WRITE_BACK_KEY = dg.AssetKey(["salesforce_write_back"])
GUARD_CHECK_NAME = "write_back_guard"


def _plan(
    context: dg.OpExecutionContext, policy: PolicyResource, warehouse: WarehouseResource
) -> tuple[str, Plan]:
    as_of = as_of_date_of(context)
    run_id = policy.run_id_for(context, as_of)
    plan = plan_write_back(
        warehouse.warehouse_path,
        run_id,
        policy=WritePolicy.from_policy(policy.policy),
        spark_warehouse=spark_tables_dir(policy.policy),
    )
    return run_id, plan


def _run_outcomes(report: ApplyReport) -> dict[str, Any]:
    """The run's write-back figures (every pass of its run id) and, when some still fail, their
    CRM codes and what happens to them next."""
    out: dict[str, Any] = dict(report.summary)
    if report.still_failing_codes:
        out["still_failing_codes"] = ", ".join(
            f"{code} {n}" for code, n in sorted(report.still_failing_codes.items())
        )
        out["next"] = (
            "a re-run of this as-of date resends every change still failing; the next full "
            "run decides again and sends what it still wants (the rest is marked superseded); "
            "a signals or returns run in between sends them as they are"
        )
    return out


@dg.asset(
    key=dg.AssetKey(["ops", "decision_outcomes"]),
    group_name="write_back",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description="ops.decision_outcomes: the append-only log of what became of every recorded "
    "decision in the CRM (applied, held, failed, superseded ...), written by the write-back; "
    "the public view decisions.book_decision_outcomes reads it.",
)
def decision_outcome_log(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Make sure the outcome log exists before dbt builds the view over it (rows come from the
    write-back of each run)."""
    with ledger.connect(warehouse.warehouse_path) as con:
        rows = con.execute("select count(*) from ops.decision_outcomes").fetchall()[0][0]
    return dg.MaterializeResult(metadata={"dagster/row_count": int(rows)})


def _trigger_latency(context: dg.AssetExecutionContext, written: datetime) -> dict[str, Any]:
    """Speed to lead: the seconds from the run's trigger (a sensor's tick, `books/triggered_at`)
    to the end of its CRM write; nothing for a run without a trigger time."""
    triggered = triggered_at_of(context)
    if triggered is None:
        return {}
    return {
        "triggered_at": triggered.isoformat(),
        "crm_written_at": written.isoformat(),
        "trigger_latency_seconds": round((written - triggered).total_seconds(), 3),
    }


def _blocked_message(plan: Plan) -> str:
    return (
        "write-back blocked by the blast-radius guard: "
        + "; ".join(plan.blocked_reasons)
        + f". Re-run with tag {TAG_OVERRIDE_GUARD}=true to write it anyway."
    )


@dg.asset_check(
    asset=SYNC_MODEL_KEY,
    name=GUARD_CHECK_NAME,
    blocking=True,
    pool=DUCKDB_POOL,
    description="Plans this run's CRM write-back (no CRM call) and fails when the blast-radius "
    "guard blocks it; blocking, so a failure means zero CRM writes this run.",
)
def write_back_guard(
    context: dg.AssetCheckExecutionContext, policy: PolicyResource, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Gate before the CRM write: too many moves, or too much of one book, stops the run."""
    op_context = context.op_execution_context
    run_id, plan = _plan(op_context, policy, warehouse)
    override = flag_of(op_context, TAG_OVERRIDE_GUARD)
    dry_run = flag_of(op_context, TAG_DRY_RUN)
    passed = not plan.is_blocked or override or dry_run
    if plan.is_blocked and passed:
        why = "override tag" if override else "dry run"
        context.log.warning(f"blocked plan let through ({why}): {plan.blocked_reasons}")
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if passed else _blocked_message(plan),
        metadata={
            "run_id": run_id,
            "planned_changes": len(plan.changes),
            "planned_changes_by_object": dg.MetadataValue.json(plan.count_by_object()),
            "moves_to_pool": plan.moves,
            "owned_accounts": plan.owned_accounts,
            "blocked_reasons": "; ".join(plan.blocked_reasons) or "none",
            "overridden": bool(plan.is_blocked and override),
        },
    )


@dg.asset(
    key=WRITE_BACK_KEY,
    deps=SYNC_MODEL_KEYS,
    group_name="write_back",
    kinds={"salesforce", "python"},
    pool=DUCKDB_POOL,
)
def salesforce_write_back(
    context: dg.AssetExecutionContext,
    policy: PolicyResource,
    warehouse: WarehouseResource,
    crm: dg.ResourceParam[CrmOpener],
) -> dg.MaterializeResult:
    """Write this run's account ownership/book-status changes and lead owners to the CRM,
    exactly once each.

    The plan is stored in the warehouse ledger before any call; a dry run stops there, a plan
    blocked by the blast-radius guard stops there unless the run carries the override tag.
    Every attempted change gets one `ops.sync_log` row.
    """
    run_id, plan = _plan(context.op_execution_context, policy, warehouse)
    dry_run = flag_of(context, TAG_DRY_RUN)
    override = flag_of(context, TAG_OVERRIDE_GUARD)
    if plan.is_blocked and not override and not dry_run:
        # The plan stays stored (ops.write_ledger / ops.write_plans) for a person to read.
        raise dg.Failure(
            description=_blocked_message(plan),
            metadata={"run_id": run_id, "planned_changes": len(plan.changes)},
        )
    path = warehouse.warehouse_path
    if dry_run:
        # No CRM call at all: neither a connection nor a recovery pass.
        report = apply_plan(None, path, plan, dry_run=True)  # type: ignore[arg-type]
    else:
        with crm.open() as connection:
            report = apply_plan(connection, path, plan, override_guard=override)
    written = datetime.now(UTC)
    metadata: dict[str, Any] = {
        "run_id": run_id,
        "dry_run": dry_run,
        "blocked_reasons": "; ".join(plan.blocked_reasons) or "none",
        "planned_changes": len(plan.changes),
        "moves_to_pool": plan.moves,
        # What a person reads first (the CLI summary prints it): the run's figures.
        "outcomes": dg.MetadataValue.json(report.outcomes if dry_run else _run_outcomes(report)),
        "ledger_states": dg.MetadataValue.json(report.outcomes),
        "api_calls": report.api_calls,
        "conflicts": len(report.conflicts),
        "readback_mismatches": report.readback_mismatches,
        "stopped_by_api_budget": report.stopped_by_budget,
        **_trigger_latency(context, written),
    }
    for name, count in plan.count_by_object().items():
        key = name.lower()
        rows = [r for r in report.plan_rows if r[0] == name]
        preview = "\n".join(f"| {rec} | {f} | {b} | {t} |" for _o, rec, f, b, t in rows[:20])
        metadata[f"{key}_planned_changes"] = count
        metadata[f"{key}_outcomes"] = dg.MetadataValue.json(report.outcomes_by_object.get(name, {}))
        metadata[f"{key}_conflicts"] = sum(c.sobject == name for c in report.conflicts)
        metadata[f"{key}_plan_preview"] = dg.MetadataValue.md(
            f"| {key} | field | before | after |\n|---|---|---|---|\n{preview}"
        )
    return dg.MaterializeResult(metadata=metadata)
