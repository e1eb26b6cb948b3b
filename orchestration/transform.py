"""The dbt project as Dagster assets: one lineage graph from raw CRM objects to decisions.

Manifest preparation (chosen and documented here): `dbt_manifest_path()` runs `dbt parse` when
`dbt_project/target/manifest.json` is missing or older than any file of the dbt project, at
definitions load time. `DbtProject.prepare_if_dev()` alone is not enough: it only acts under
`dagster dev`, while the CLI runner, pytest and CI load the definitions in plain Python. The
parse gets the repo's policy as vars, because models read the policy while being parsed.
"""

import functools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.cycle import (
    DUCKDB_POOL,
    TAG_ACCOUNT_IDS,
    TAG_SIGNAL_IDS,
    PolicyResource,
    as_of_date_of,
    mode_of,
)
from orchestration.resources import WarehouseResource
from policy import load_policy, resolve_paths, to_dbt_vars

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
ENV_WAREHOUSE = "BOOKS_WAREHOUSE"

# Model folders (the layer under models/) whose assets make the decisions; the rest transform.
DECIDE_LAYERS = frozenset({"decisions", "sync"})
GROUP_TRANSFORM = "transform"
GROUP_DECIDE = "decide"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _project_files(project_dir: Path) -> Iterator[Path]:
    yield project_dir / "dbt_project.yml"
    for folder in ("models", "macros", "seeds", "snapshots", "tests"):
        root = project_dir / folder
        if root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """True when the manifest is missing or any project file changed after it was written."""
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _project_files(project_dir))


def _parse_manifest(project: DbtProject) -> None:
    """`dbt parse` into the project's target folder, with the repo policy as vars."""
    paths = resolve_paths()
    parse_vars = to_dbt_vars(load_policy(paths.policy), date(1970, 1, 1), "parse")
    env = {**os.environ, ENV_WAREHOUSE: os.environ.get(ENV_WAREHOUSE) or str(paths.warehouse)}
    cmd = [
        dbt_executable(),
        "parse",
        "--quiet",
        "--project-dir",
        str(project.project_dir),
        "--profiles-dir",
        str(project.profiles_dir),
        "--target-path",
        str(project.target_path),
        "--vars",
        json.dumps(parse_vars),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"dbt parse of {project.project_dir} failed (exit {done.returncode}):\n"
            f"{done.stdout[-4000:]}{done.stderr[-2000:]}"
        )


def dbt_manifest_path(project: DbtProject = dbt_project) -> Path:
    """The project's manifest, (re)built by `dbt parse` first if missing or stale."""
    if manifest_is_stale(Path(project.project_dir), project.manifest_path):
        log.info("parsing dbt project %s", project.project_dir)
        run_with_concurrent_update_guard(project.manifest_path, _parse_manifest, project=project)
    return project.manifest_path


class BooksDbtTranslator(DagsterDbtTranslator):
    """Maps dbt sources onto the ingestion assets' keys and models onto the product's groups.

    A dbt source `salesforce.account` is the asset ['salesforce', 'account'] that the ingestion
    materialises (one word per source end to end), so lineage is one graph. Models are keyed by
    name; the group shows the layer.
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
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


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set one environment variable for a dbt subprocess and restore it afterwards."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


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
    """Row counts of the given relations, read after dbt released the DuckDB file."""
    if not relations:
        return {}
    counts: dict[str, int] = {}
    with duckdb.connect(warehouse, read_only=True) as con:
        for relation in relations:
            counts[relation] = con.execute(f"select count(*) from {relation}").fetchone()[0]
    return counts


def with_row_counts(events: list[Any], relations: dict[str, str], warehouse: str) -> Iterator[Any]:
    """The dbt events with `dagster/row_count` added to every built model's output."""
    built = sorted(
        {
            relations[e.output_name]
            for e in events
            if isinstance(e, dg.Output) and e.output_name in relations
        }
    )
    counts = count_rows(warehouse, built)
    for event in events:
        if isinstance(event, dg.Output) and relations.get(event.output_name) in counts:
            rows = counts[relations[event.output_name]]
            yield event.with_metadata({**event.metadata, "dagster/row_count": rows})
        else:
            yield event


@functools.cache
def build_dbt_assets(project: DbtProject = dbt_project) -> dg.AssetsDefinition:
    """The dbt multi-asset, built on first use (not at import) from a fresh manifest."""

    @dbt_assets(
        manifest=dbt_manifest_path(project),
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_models",
        pool=DUCKDB_POOL,
    )
    def dbt_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        policy: PolicyResource,
        warehouse: WarehouseResource,
    ) -> Iterator[Any]:
        """Build and test the dbt models (staging -> marts -> decisions -> sync) as of a date.

        dbt gets the validated policy as vars, so every score and decision follows books.yml for
        this run's as-of date; dbt tests become asset checks, and a failing error-level test
        stops the run before the write-back.
        """
        yield from _run_dbt_build(context, dbt, policy, str(warehouse.warehouse_path))

    return dbt_models


def _run_dbt_build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, policy: PolicyResource, warehouse: str
) -> Iterator[Any]:
    as_of = as_of_date_of(context)
    run_id = policy.run_id_for(context, as_of)
    tags = dict(context.run.tags)
    ids = tuple(
        i
        for i in (tags.get(TAG_SIGNAL_IDS, "") + "," + tags.get(TAG_ACCOUNT_IDS, "")).split(",")
        if i
    )
    dbt_vars = policy.dbt_vars(as_of, run_id, mode=mode_of(context), ids=ids)
    context.log.info(f"dbt build as of {as_of} (run {run_id}, policy {policy.version[:12]})")
    with _env(ENV_WAREHOUSE, warehouse):
        # Unit tests pin the default books.yml; they belong in CI (`dbt test`), not in a cycle
        # that runs the customer's policy (a valid non-default value would fail them).
        args = ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(dbt_vars)]
        invocation = dbt.cli(args, context=context, raise_on_error=False)
        events = list(invocation.stream())
    yield from with_row_counts(events, relations_by_output(context.assets_def), warehouse)
    if not invocation.is_successful():
        failures = _failed_nodes(invocation)
        raise dg.Failure(
            description=f"dbt build failed for as-of {as_of}: "
            + ("; ".join(failures[:10]) or "see the dbt log in the step output"),
            metadata={
                "failed_nodes": len(failures),
                "dbt_target": dg.MetadataValue.path(str(invocation.target_path)),
            },
        )


def _failed_nodes(invocation: Any) -> list[str]:
    """'<node>: <message>' for every dbt node that errored or whose test failed."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except (OSError, KeyError, ValueError):
        return []
    return [
        f"{r['unique_id']} ({r['status']}): {(r.get('message') or '').strip()[:300]}"
        for r in results
        if r.get("status") in ("error", "fail")
    ]


def dbt_executable() -> str:
    """The dbt next to this Python (the venv's), so a PATH without .venv/bin still works."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource for the product's dbt project."""
    return DbtCliResource(
        project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
    )


def mart_asset_keys(layer: str = "marts") -> list[dg.AssetKey]:
    """Keys of the dbt models in one layer folder (the report depends on the marts)."""
    nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    keys = []
    for spec in build_dbt_assets().specs:
        fqn = nodes.get(spec.metadata.get("dagster_dbt/unique_id"), {}).get("fqn") or []
        if len(fqn) > 2 and fqn[1] == layer:
            keys.append(spec.key)
    return sorted(keys, key=lambda k: k.to_user_string())
