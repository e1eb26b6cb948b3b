"""The quarantine view as an asset: what the data contracts keep out of dbt staging.

The blocking data-contract checks (orchestration/contracts.py) record bad CRM rows in
`ops.quarantine`; `ops.quarantined_ids` is the view of the latest contract run that every
salesforce staging model anti-joins (dbt source `ops.quarantined_ids`). Making the view an asset
downstream of the raw CRM assets keeps lineage one graph (no dangling dbt source) and orders
the cycle: ingest -> contracts (blocking) -> quarantine -> dbt.
"""

import dagster as dg

from contracts import ensure_contract_tables
from orchestration.cycle import DUCKDB_POOL
from orchestration.ingest import GROUP, SALESFORCE_KEYS
from orchestration.resources import WarehouseResource
from warehouse.lease import connect_warehouse

QUARANTINE_KEY = dg.AssetKey(["ops", "quarantined_ids"])


@dg.asset(
    key=QUARANTINE_KEY,
    deps=list(SALESFORCE_KEYS.values()),
    group_name=GROUP,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    metadata={"dagster/table_name": "ops.quarantined_ids"},
)
def quarantined_ids(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """CRM records the latest data-contract run quarantined: dbt staging leaves them out, so a
    malformed row never reaches a decision. Counted per object so RevOps sees what is held back.
    """
    with connect_warehouse(warehouse.warehouse_path) as con:
        ensure_contract_tables(con)
        by_object = dict(
            con.execute(
                "select object, count(*) from ops.quarantined_ids group by 1 order by 1"
            ).fetchall()
        )
    total = sum(by_object.values())
    if total:
        context.log.warning(f"{total} CRM records quarantined by the data contracts: {by_object}")
    return dg.MaterializeResult(
        metadata={"dagster/row_count": total, "by_object": dg.MetadataValue.json(by_object)}
    )
