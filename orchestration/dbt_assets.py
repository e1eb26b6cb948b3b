"""The dbt project as Dagster assets: one lineage graph from raw CRM objects to decisions.

The cycle runs only the gate tests (selector `books_cycle`, dbt_project/selectors.yml); the
other data tests run in the job `books_quality` (quality.py); events are streamed as dbt emits
them, and row counts of the built tables are read once dbt released the DuckDB file.
"""

import functools
import json
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.cycle import DUCKDB_POOL, PolicyResource
from orchestration.dbt_cli import dbt_environment, failed_nodes, stop_dbt
from orchestration.dbt_parse import (
    DBT_PROJECT_DIR,
    dbt_executable,
    dbt_manifest_path,
    dbt_project,
    warehouse_target,
)
from orchestration.resources import WarehouseResource
from orchestration.run_context import GROUP_TRANSFORM, run_context_for, store_run_context
from warehouse.engine import PROFILE_WAREHOUSE_DIR_ENV

# Model folders (the layer under models/) whose assets make the decisions; the rest transform.
DECIDE_LAYERS = frozenset({"decisions", "sync"})
GROUP_DECIDE = "decide"

# dbt selector (dbt_project/selectors.yml): what a cycle builds (models + gate tests).
CYCLE_SELECTOR = "books_cycle"


class BooksDbtTranslator(DagsterDbtTranslator):
    """Maps dbt sources onto the ingestion assets' keys and models onto the product's groups.

    A dbt source `salesforce.account` is the asset ['salesforce', 'account'] that the ingestion
    materialises (one word per source end to end), so lineage is one graph. Models are keyed by
    name; the group shows the layer.
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # A source written by a Python asset of another name (ops.sync_log: the write-back)
            # names that asset in `meta: {dagster: {asset_key: [...]}}`, dagster-dbt's convention.
            named = ((dbt_resource_props.get("meta") or {}).get("dagster") or {}).get("asset_key")
            if named:
                return dg.AssetKey(named)
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        # Models, seeds and snapshots by name alone (unique in a dbt project): the key other
        # assets depend on (e.g. the write-back on `sync_salesforce__accounts`) stays the same
        # if a model moves schema.
        return dg.AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return None  # sources belong to the ingestion assets' own group
        fqn = dbt_resource_props.get("fqn") or []
        layer = fqn[1] if len(fqn) > 2 else ""
        return GROUP_DECIDE if layer in DECIDE_LAYERS else GROUP_TRANSFORM

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        description = (dbt_resource_props.get("description") or "").strip()
        if description:
            return description
        return f"dbt {dbt_resource_props['resource_type']} {dbt_resource_props['name']}."


TRANSLATOR = BooksDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=True)
)


def relations_by_output(assets_def: dg.AssetsDefinition) -> dict[str, str]:
    """`schema.table` of each dbt output (the database part is the file name; dropped)."""
    out = {}
    for key, spec in assets_def.specs_by_key.items():
        table = spec.metadata.get("dagster/table_name")
        if table:
            relation = ".".join(str(getattr(table, "value", table)).split(".")[-2:])
            out[assets_def.get_output_name_for_asset_key(key)] = relation
    return out


def count_rows(warehouse: str, relations: list[str]) -> dict[str, int]:
    """Row counts of the given relations that are tables, read after dbt released the DuckDB
    file (free: DuckDB keeps them). Views are left out: a view stores no rows, and counting
    one runs its query after every build (at L: 2.3 s for stg_salesforce__quarantine_counts,
    0.7 s for int_activities_classified)."""
    if not relations:
        return {}
    counts: dict[str, int] = {}
    with duckdb.connect(warehouse, read_only=True) as con:
        tables = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = current_database()"
            ).fetchall()
        }
        for relation in relations:
            if relation in tables:
                counts[relation] = con.execute(f"select count(*) from {relation}").fetchone()[0]
    return counts


@functools.cache
def build_dbt_assets(project: DbtProject) -> dg.AssetsDefinition:
    """The dbt multi-asset, built on first use (not at import) from a fresh manifest.

    Only the selector `books_cycle` is part of it: every model and the gate tests (as asset
    checks); the quality tests belong to the `books_quality` job (`books_quality_job`).
    """

    @dbt_assets(
        manifest=dbt_manifest_path(project),
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_models",
        pool=DUCKDB_POOL,
        selector=CYCLE_SELECTOR,
    )
    def dbt_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        policy: PolicyResource,
        warehouse: WarehouseResource,
    ) -> Iterator[Any]:
        """Build the dbt models (staging -> marts -> decisions -> sync) as of the run's date and
        run the gate tests.

        dbt gets the validated policy (environment) and the run's as-of date from ops.run_context, so
        every score and decision follows books.yml for this run's as-of date; the gate tests
        become asset checks, and a failing error-level gate stops the run before the write-back.
        """
        yield from _run_dbt_build(context, dbt, policy, str(warehouse.warehouse_path))

    return dbt_models


def _run_dbt_build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, policy: PolicyResource, warehouse: str
) -> Iterator[Any]:
    wanted = run_context_for(context, policy)
    if store_run_context(warehouse, wanted):
        context.log.info("wrote ops.run_context (its asset is not part of this run)")
    context.log.info(
        f"dbt build as of {wanted.as_of_date} (run {wanted.run_id}, "
        f"policy {policy.version[:12]}, mode {wanted.cycle_mode})"
    )
    relations = relations_by_output(context.assets_def)
    built: dict[str, dg.AssetKey] = {}
    args, engine_env = engine_build_args(policy, warehouse)
    with dbt_environment(warehouse, {**policy.dbt_env(), **engine_env}):
        # The selection (--selector books_cycle, or the subset a user picked) comes from
        # dagster-dbt; unit tests are not in it (CI runs them against the default books.yml).
        invocation = dbt.cli(
            args,
            context=context,
            raise_on_error=False,
            target_path=warehouse_target(warehouse),
        )
        # Streamed: Dagster records each event while dbt runs instead of all of them after.
        try:
            for event in invocation.stream():
                if isinstance(event, dg.Output) and event.output_name in relations:
                    key = context.asset_key_for_output(event.output_name)
                    built[relations[event.output_name]] = key
                yield event
        finally:
            stop_dbt(invocation)
    # Row counts of the built tables once dbt has released the DuckDB file (a materialization's
    # metadata is fixed when it is yielded, so they come as observations of the same assets).
    counted = sorted(built) if not engine_env else []  # on Spark the tables are not in DuckDB
    for relation, rows in count_rows(warehouse, counted).items():
        yield dg.AssetObservation(asset_key=built[relation], metadata={"dagster/row_count": rows})
    if engine_env and invocation.is_successful():
        serve_spark_build(warehouse, {**policy.dbt_env(), **engine_env})
    if not invocation.is_successful():
        failures = failed_nodes(invocation)
        raise dg.Failure(
            description=f"dbt build failed for as-of {wanted.as_of_date}: "
            + ("; ".join(failures[:10]) or "see the dbt log in the step output"),
            metadata={
                "failed_nodes": len(failures),
                "dbt_target": dg.MetadataValue.path(str(invocation.target_path)),
            },
        )


def engine_build_args(policy: PolicyResource, warehouse: str) -> tuple[list[str], dict[str, str]]:
    """The dbt command and extra environment for the policy's engine (`warehouse.engine`).

    DuckDB: `dbt build` on the warehouse file. Spark: the sources (raw and ops tables, ensured
    first) are copied to Parquet for Spark (warehouse/spark_raw.py) and dbt builds on the
    `spark` target, connected through the environment variables the policy names.
    """
    if policy.policy.warehouse.engine != "spark":
        return ["build"], {}
    from warehouse.engine import spark_settings
    from warehouse.spark_raw import export_for_spark

    settings = spark_settings(policy.policy)
    export_for_spark(Path(warehouse), settings.warehouse_dir)
    return ["build", "--target", "spark"], settings.dbt_env()


def serve_spark_build(warehouse: str, env: Mapping[str, str]) -> None:
    """After a build on Spark: the tables the report and the analytics file read are copied into
    the DuckDB warehouse and dbt recreates the views there (views are cheap and one of them, the
    decision outcomes, must read the outcome log as the write-back leaves it). The write-back
    plan reads the sync models from Spark itself (reverse_etl.plan)."""
    from warehouse.spark_raw import mirror_to_duckdb

    mirror_to_duckdb(Path(env[PROFILE_WAREHOUSE_DIR_ENV]), Path(warehouse))
    target = warehouse_target(warehouse) / "duckdb-views"
    command = [
        dbt_executable(),
        "run",
        "--select",
        "config.materialized:view",
        "--target",
        "duckdb",
    ]
    command += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    command += ["--target-path", str(target), "--log-path", str(target / "logs")]
    with dbt_environment(warehouse, env):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise dg.Failure(
            description="dbt could not recreate the views on DuckDB after the Spark build: "
            + done.stdout.strip()[-800:]
        )


def mart_asset_keys(layer: str = "marts") -> list[dg.AssetKey]:
    """Keys of the dbt models in one layer folder (the report depends on the marts)."""
    nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    keys = []
    for spec in build_dbt_assets(dbt_project).specs:
        fqn = nodes.get(spec.metadata.get("dagster_dbt/unique_id"), {}).get("fqn") or []
        if len(fqn) > 2 and fqn[1] == layer:
            keys.append(spec.key)
    return sorted(keys, key=lambda k: k.to_user_string())
