"""Run the decision engine's compiled SQL directly in DuckDB, without dbt per world.

A dbt invocation per generated world would take seconds; property tests need hundreds of
worlds. So the project is compiled ONCE (dbtRunner `compile` with fixed vars) and the compiled
SQL of the selected models (manifest `compiled_code`, exactly what dbt runs) is executed in one
DuckDB connection, in dependency order, against input tables the test creates under the same
relation names (the warehouse catalog is ATTACHed in memory under the name the SQL uses).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb
import polars as pl

from policy import policy_dbt_env
from policy.paths import temporary_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompiledModel:
    """One dbt model: where it lives and the SQL dbt would run for it."""

    name: str
    database: str
    schema: str
    alias: str
    compiled_sql: str | None
    depends_on: tuple[str, ...]

    @property
    def relation(self) -> str:
        return f'"{self.database}"."{self.schema}"."{self.alias}"'


def compile_models(
    project_dir: Path, work_dir: Path, dbt_vars: Mapping, select: Iterable[str]
) -> dict[str, CompiledModel]:
    """Compile the selected models once; return every model of the manifest by name.

    The warehouse file and target folder live in `work_dir`, so the shared checkout's
    `dbt_project/target` and warehouse are untouched.
    """
    from dbt.cli.main import dbtRunner

    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / "target"
    args = [
        "compile",
        "--project-dir", str(project_dir),
        "--profiles-dir", str(project_dir),
        "--target-path", str(target),
        "--vars", json.dumps({k: v for k, v in dbt_vars.items() if k != "policy"}),
        "--select", *select,
        "--quiet",
    ]  # fmt: skip
    with temporary_env(
        {
            "BOOKS_WAREHOUSE": str(work_dir / "warehouse.duckdb"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **policy_dbt_env(dbt_vars["policy"]),
        }
    ):
        result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(
            f"dbt compile of {project_dir} failed: {result.exception or result.result}"
        )
    manifest = json.loads((target / "manifest.json").read_text())
    models: dict[str, CompiledModel] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        deps = tuple(
            manifest["nodes"][dep]["name"]
            for dep in node["depends_on"]["nodes"]
            if dep in manifest["nodes"] and manifest["nodes"][dep]["resource_type"] == "model"
        )
        models[node["name"]] = CompiledModel(
            name=node["name"],
            database=node["database"],
            schema=node["schema"],
            alias=node["alias"] or node["name"],
            compiled_sql=node.get("compiled_code"),
            depends_on=deps,
        )
    return models


class CompiledRunner:
    """Executes a compiled model set in one in-memory DuckDB connection.

    `inputs` are models the caller provides as tables (they are not executed); `targets` are
    the models to run, executed with their upstream models that are not inputs.
    """

    def __init__(
        self,
        models: Mapping[str, CompiledModel],
        inputs: Iterable[str],
        targets: Iterable[str],
    ) -> None:
        self.models = dict(models)
        self.inputs = set(inputs)
        missing = (self.inputs | set(targets)) - set(self.models)
        if missing:
            raise KeyError(f"models not in the manifest: {sorted(missing)}")
        graph: dict[str, set[str]] = {}
        pending = list(targets)
        while pending:
            name = pending.pop()
            if name in graph or name in self.inputs:
                continue
            model = self.models[name]
            if model.compiled_sql is None:
                raise ValueError(f"model {name} was not compiled (add it to the selection)")
            graph[name] = {dep for dep in model.depends_on if dep not in self.inputs}
            pending.extend(model.depends_on)
        self.order = list(TopologicalSorter(graph).static_order())
        self._subset_orders: dict[tuple[str, ...], list[str]] = {}
        # One thread: tiny tables, and per-query scheduling overhead dominates otherwise.
        self.con = duckdb.connect(config={"threads": 1})
        for catalog in sorted({model.database for model in self.models.values()}):
            self.con.execute(f"attach ':memory:' as \"{catalog}\"")
        for catalog, schema in sorted({(m.database, m.schema) for m in self.models.values()}):
            self.con.execute(f'create schema if not exists "{catalog}"."{schema}"')

    def load(self, name: str, frame: pl.DataFrame) -> None:
        """Create input model `name` as a table holding `frame` (a table: views over the Arrow
        data measured slower, each model reading an input scans it again)."""
        relation = self.models[name].relation
        self.con.register("_input_frame", frame.to_arrow())
        try:
            self.con.execute(f"create or replace table {relation} as select * from _input_frame")
        finally:
            self.con.unregister("_input_frame")

    def load_source(self, schema: str, table: str, frame: pl.DataFrame) -> None:
        """Create dbt source `schema.table` (e.g. ops.run_cycle_ids) holding `frame`, in the
        catalog the compiled SQL names (one catalog: the warehouse)."""
        catalogs = {model.database for model in self.models.values()}
        if len(catalogs) != 1:
            raise ValueError(f"sources need one catalog, the models use {sorted(catalogs)}")
        relation = f'"{catalogs.pop()}"."{schema}"."{table}"'
        self.con.execute(f"create schema if not exists {relation.rsplit('.', 1)[0]}")
        self.con.register("_source_frame", frame.to_arrow())
        try:
            self.con.execute(f"create or replace table {relation} as select * from _source_frame")
        finally:
            self.con.unregister("_source_frame")

    def run(self, targets: Iterable[str] | None = None) -> None:
        """Execute the models in dependency order, each as a table like dbt's first run.

        `targets` limits the run to those models and their upstream models (a property that
        only reads the distributions need not pay for the sync payload)."""
        for name in self._order_for(tuple(targets) if targets is not None else None):
            model = self.models[name]
            try:
                self.con.execute(
                    f"create or replace table {model.relation} as {model.compiled_sql}"
                )
            except duckdb.Error as error:
                raise RuntimeError(f"compiled SQL of model {name} failed: {error}") from error

    def _order_for(self, targets: tuple[str, ...] | None) -> list[str]:
        if targets is None:
            return self.order
        if targets not in self._subset_orders:
            needed: set[str] = set()
            pending = list(targets)
            while pending:
                name = pending.pop()
                if name not in needed and name not in self.inputs:
                    needed.add(name)
                    pending.extend(self.models[name].depends_on)
            unknown = needed - set(self.order)
            if unknown:
                raise KeyError(f"models outside this runner's targets: {sorted(unknown)}")
            self._subset_orders[targets] = [name for name in self.order if name in needed]
        return self._subset_orders[targets]

    def frame(self, name: str, order_by: str | None = None) -> pl.DataFrame:
        """The rows of model `name` (optionally ordered, for stable comparisons)."""
        sql = f"select * from {self.models[name].relation}"
        if order_by:
            sql += f" order by {order_by}"
        return self.con.sql(sql).pl()

    def close(self) -> None:
        self.con.close()
