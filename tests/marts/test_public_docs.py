"""Every column an analyst can query is documented: the columns of every model in marts/,
decisions/ and sync/, of every table warehouse/publish.py publishes, and of the write-back's
ops.sync_log and ops.write_ledger (dbt sources) have a non-empty description in the dbt YAML.
And every such model enforces its contract: its YAML declares each column's data type, so a
model whose SQL changes a public column's name or type fails to build instead of publishing it.

The columns are read from the built warehouse (what a reader really sees), the descriptions
from dbt's manifest (what `dbt docs` shows), so a column added to a model's SQL without a line
in its YAML fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reverse_etl import ledger
from tests.dbt.dbt_helpers import run_dbt
from tests.marts.conftest import MartsWorld
from warehouse.publish import DEFAULT_SCHEMAS, DEFAULT_TABLES

PUBLIC_MODEL_PATHS = ("models/marts/", "models/decisions/", "models/sync/")
WRITE_BACK_SOURCES = ("ops.sync_log", "ops.write_ledger")


def public_relations(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """'schema.name' -> manifest node, for every public model and documented ops table."""
    out: dict[str, dict[str, Any]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("materialized") == "ephemeral":
            continue
        relation = f"{node['schema']}.{node['alias']}"
        if node["original_file_path"].startswith(PUBLIC_MODEL_PATHS) or (
            node["schema"] in DEFAULT_SCHEMAS or relation in DEFAULT_TABLES
        ):
            out[relation] = node
    for source in manifest["sources"].values():
        relation = f"{source['schema']}.{source['name']}"
        if relation in DEFAULT_TABLES or relation in WRITE_BACK_SOURCES:
            out[relation] = source
    return out


def undocumented(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> list[str]:
    """'schema.table.column' of every public column (as built) without a description, and
    every published table that is no documented dbt model or source."""
    relations = public_relations(manifest)
    missing = [f"{t}: published but not a documented dbt model or source" for t in
               DEFAULT_TABLES if t not in relations]  # fmt: skip
    for relation, node in sorted(relations.items()):
        schema, name = relation.split(".", 1)
        built = [
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
        ]
        if not built:
            missing.append(f"{relation}: not built")
        if not (node.get("description") or "").strip():
            missing.append(f"{relation}: the table has no description")
        described = {
            column.lower(): (spec.get("description") or "").strip()
            for column, spec in node["columns"].items()
        }
        missing += [f"{relation}.{c}" for c in built if not described.get(c.lower())]
    return missing


def uncontracted(manifest: dict[str, Any]) -> list[str]:
    """Public models without an enforced contract, and their columns without a data type."""
    out = []
    for relation, node in sorted(public_relations(manifest).items()):
        if node["resource_type"] != "model":
            continue  # sources (ops.sync_log, ops.write_ledger) cannot carry a contract
        if not node["config"]["contract"]["enforced"]:
            out.append(f"{relation}: contract not enforced")
        out += [f"{relation}.{c}: no data_type" for c, s in node["columns"].items()
                if not s.get("data_type")]  # fmt: skip
    return out


@pytest.mark.slow
def test_every_public_column_has_a_description(marts_world: MartsWorld) -> None:
    world = marts_world.world
    synced = run_dbt(
        ["run", "--select", "path:models/sync"], world.warehouse, world.dbt_vars, world.work_dir
    )
    assert synced.success, synced.exception
    ledger.connect(world.warehouse).close()  # creates ops.sync_log and ops.write_ledger
    manifest = json.loads(Path(world.work_dir, "target", "manifest.json").read_text())
    with duckdb.connect(str(world.warehouse)) as con:
        missing = undocumented(con, manifest)
    assert len(public_relations(manifest)) > 20  # the selection found the public tables
    assert missing == [], f"{len(missing)} public columns without a description:\n" + "\n".join(
        missing
    )


@pytest.mark.slow
def test_every_public_model_enforces_its_contract(marts_world: MartsWorld) -> None:
    manifest = json.loads(Path(marts_world.world.work_dir, "target", "manifest.json").read_text())
    assert uncontracted(manifest) == []
