"""Ingestion assets: one per CRM object (`salesforce/<table>`) and one per landing feed (`files/...`).

Plain `@multi_asset`s calling `ingest.run_salesforce_ingest` / `ingest.run_file_ingest`, not
dagster-dlt's `@dlt_assets`: `@dlt_assets` needs the dlt source and pipeline (hence the warehouse
path and a CRM connection) at import time, while here both come from resources at run time, and
the source picks REST or Bulk 2.0 per run. The asset keys equal the dbt source names, so lineage
is one graph. Both assets write the DuckDB file, so they run in pool `duckdb_writer`.

The extract's look-back window is policy (`ingest.lookback_minutes`). With run tag
`books/reconcile=true` (the daily reconciliation schedule, `books run --reconcile`) it then
reconciles every id and SystemModstamp with the CRM (`ingest.reconcile`), and every run ends by
comparing the CRM's row counts with the warehouse's: a difference is a warning and metadata.

The CRM extract starts by finishing any write-back a killed cycle left in flight
(`reverse_etl.recover`), so this cycle reads the CRM as it will stay and plans from it; a dry
run skips that (it makes no CRM write at all).
"""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import duckdb

from ingest.fields import object_specs
from ingest.files import FEEDS, run_file_ingest
from ingest.files import SCHEMA as FILES_SCHEMA
from ingest.reconcile import ReconcileStats, count_gaps, describe_gaps, reconcile
from ingest.salesforce import DATASET, IngestConfig, run_salesforce_ingest
from orchestration.cycle import TAG_DRY_RUN, TAG_RECONCILE, PolicyResource, as_of_date_of, flag_of
from orchestration.resources import CrmOpener, WarehouseResource
from reverse_etl import WritePolicy, recover

GROUP = "ingest"
POOL = "duckdb_writer"
KINDS = {"salesforce", "dlt", "duckdb"}

_PURPOSE = {
    "User": "Reps, pool users and managers: roles, segments, ramp and out-of-office dates.",
    "Account": "Accounts with owner and book fields: the unit the books distribute and retrieve.",
    "Contact": "Contacts (no personal names) for key-contact signals and engagement matching.",
    "Lead": "Inbound leads (no personal names), matched to accounts as timing signals.",
    "Opportunity": "Opportunities: open ones protect an account; close-date pushes flag hoarding.",
    "Task": "Tasks incl. archived ones (queryAll): the meaningful-touch history of every account.",
    "Event": "Events incl. archived ones (queryAll): meetings count as meaningful touches.",
    "Signal__c": "Timing signals (intent, funding, key contacts) recorded in the CRM.",
    "AccountHistory": "Field history of owner and book status: who owned what, and when.",
}

SALESFORCE_KEYS = {name: dg.AssetKey(["salesforce", s.table]) for name, s in object_specs().items()}
FILE_KEYS = {feed.table: dg.AssetKey(["files", feed.table]) for feed in FEEDS}


def _table_rows(warehouse: WarehouseResource, schema: str, tables: list[str]) -> dict[str, int]:
    con = duckdb.connect(str(warehouse.warehouse_path), read_only=True)
    try:
        return {
            t: int(con.execute(f'select count(*) from {schema}."{t}"').fetchall()[0][0])
            for t in tables
        }
    finally:
        con.close()


@dg.multi_asset(
    name="salesforce_raw",
    specs=[
        dg.AssetSpec(
            key,
            description=f"raw_salesforce.{object_specs()[name].table}: {_PURPOSE[name]} "
            "Incremental on SystemModstamp with a look-back window, merged on Id; deleted "
            "rows arrive with is_deleted = true.",
            group_name=GROUP,
            kinds=KINDS,
            skippable=True,
            metadata={"dagster/table_name": f"{DATASET}.{object_specs()[name].table}"},
        )
        for name, key in SALESFORCE_KEYS.items()
    ],
    can_subset=True,
    pool=POOL,
)
def salesforce_raw(
    context: dg.AssetExecutionContext,
    crm: dg.ResourceParam[CrmOpener],
    warehouse: WarehouseResource,
    policy: PolicyResource,
) -> Iterator[dg.MaterializeResult]:
    """Extract CRM objects changed since the last load into DuckDB `raw_salesforce`."""
    selected = context.selected_asset_keys
    objects = [name for name, key in SALESFORCE_KEYS.items() if key in selected]

    def progress(obj: str, rows: int) -> None:
        context.log.debug(f"{obj}: {rows} rows extracted")

    with crm.open() as conn:
        recovered = 0
        if not flag_of(context, TAG_DRY_RUN):
            write_policy = WritePolicy.from_policy(policy.policy)
            recovered = recover(conn, warehouse.warehouse_path, policy=write_policy)
        if recovered:
            context.log.warning(f"finished {recovered} write-back rows an interrupted run left")
        run_id = policy.run_id_for(context, as_of_date_of(context))
        config = IngestConfig(lookback=timedelta(minutes=policy.policy.ingest.lookback_minutes))
        stats = run_salesforce_ingest(
            conn,
            warehouse.warehouse_path,
            objects=objects,
            progress=progress,
            config=config,
            run_id=run_id,
        )
        reconciled: dict[str, ReconcileStats] = {}
        if flag_of(context, TAG_RECONCILE):
            reconciled = reconcile(
                conn, warehouse.warehouse_path, run_id=run_id, objects=objects, config=config
            )
            found = sum(r.found for r in reconciled.values())
            fixed = sum(r.fixed for r in reconciled.values())
            context.log.info(f"reconciliation: {found} rows missing or stale, {fixed} loaded")
        gaps = count_gaps(conn, warehouse.warehouse_path, objects)
        if gaps:
            context.log.warning(describe_gaps(gaps))
        usage = conn.api_usage
    totals = _table_rows(warehouse, DATASET, [stats[o].table for o in objects])
    for name in objects:
        s = stats[name]
        context.log.info(
            f"{name}: {s.rows_loaded} new/changed rows ({s.deleted_rows} deleted) via {s.method}"
        )
        if s.quarantined:
            context.log.warning(
                f"{name}: {len(s.quarantined)} record value(s) ingestion cannot load held back in "
                f"ops.quarantine (run {run_id}), e.g. {s.quarantined[0].describe()}; the "
                "warehouse keeps their previous version until the CRM holds a loadable one"
            )
        metadata: dict = {
            "rows_loaded": s.rows_loaded,
            "rows_quarantined": len({r.record_id for r in s.quarantined}),
            "rows_fetched": s.rows_fetched,
            "deleted_rows": s.deleted_rows,
            "method": s.method,
            "since": str(s.since) if s.since else "full load",
            "seconds": round(s.seconds, 3),
            "dagster/row_count": totals[s.table],
        }
        if usage:
            metadata["api_usage"] = f"{usage[0]}/{usage[1]}"
        if name in reconciled:
            metadata["reconcile_found"] = reconciled[name].found
            metadata["reconcile_fixed"] = reconciled[name].fixed
        if name in gaps:
            metadata["crm_rows"], metadata["count_gap"] = (
                gaps[name][0],
                gaps[name][0] - gaps[name][1],
            )
        yield dg.MaterializeResult(asset_key=SALESFORCE_KEYS[name], metadata=metadata)


@dg.multi_asset(
    name="landing_files",
    specs=[
        dg.AssetSpec(
            key,
            description=f"raw_files.{table}: the {feed.name} feed from the landing folder "
            f"({feed.folder}/{feed.pattern}); each file once, re-deliveries not double-counted, "
            "bad rows held back in ops.quarantine, unreadable files in "
            "raw_files._rejected_files.",
            group_name=GROUP,
            kinds={"files", "duckdb"},
            skippable=True,
            metadata={"dagster/table_name": f"{FILES_SCHEMA}.{table}"},
        )
        for feed in FEEDS
        for table, key in [(feed.table, FILE_KEYS[feed.table])]
    ],
    can_subset=True,
    pool=POOL,
)
def landing_files(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, policy: PolicyResource
) -> Iterator[dg.MaterializeResult]:
    """Load new intent and engagement files; a bad file or row is reported, never fatal."""
    run_id = policy.run_id_for(context, as_of_date_of(context))
    stats = run_file_ingest(warehouse.landing_path, warehouse.warehouse_path, run_id=run_id)
    for label, reason in stats.rejected.items():
        context.log.warning(f"landing file {label} held back: {reason}")
    for label, rows in stats.quarantined.items():
        context.log.warning(
            f"landing file {label}: {rows} bad row(s) held back in ops.quarantine "
            f"(run {run_id}); its other rows loaded"
        )
    totals = _table_rows(warehouse, FILES_SCHEMA, list(FILE_KEYS))
    for feed in FEEDS:
        key = FILE_KEYS[feed.table]
        if key not in context.selected_asset_keys:
            continue
        prefix = f"{feed.folder}/"
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "rows_loaded": stats.rows_loaded[feed.table],
                "files_loaded": len([f for f in stats.loaded if f.startswith(prefix)]),
                "files_duplicate": len([f for f in stats.duplicates if f.startswith(prefix)]),
                "files_rejected": dg.MetadataValue.json(
                    {f: r for f, r in stats.rejected.items() if f.startswith(prefix)}
                ),
                "rows_quarantined": sum(
                    n for f, n in stats.quarantined.items() if f.startswith(prefix)
                ),
                "dagster/row_count": totals[feed.table],
            },
        )
