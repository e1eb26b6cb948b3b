"""The dbt project as Dagster assets: one lineage graph from raw CRM objects to decisions.

Manifest preparation (chosen and documented here): `dbt_manifest_path()` runs `dbt parse` when
`dbt_project/target/manifest.json` is missing or older than any file of the dbt project, at
definitions load time. `DbtProject.prepare_if_dev()` alone is not enough: it only acts under
`dagster dev`, while the CLI runner, pytest and CI load the definitions in plain Python. The
parse gets the repo's policy as vars, because models read the policy while being parsed.

Why a cycle's dbt step is fast (issue 8): the vars are only `policy` (the run's as-of date, id
and mode are rows in ops.run_context, warehouse/run_context.py), so they equal the parse's vars
and dbt reuses the partial parse dagster-dbt copies into each invocation's target folder; the
cycle runs only the gate tests (selector `books_cycle`, dbt_project/selectors.yml), the other
data tests run in the job `books_quality`; events are streamed as dbt emits them.
"""

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from packaging import version

from orchestration.cycle import (
    DUCKDB_POOL,
    TAG_DRY_RUN,
    PolicyResource,
    as_of_date_of,
    cycle_ids_of,
    dbt_cycle_mode,
    flag_of,
    mode_of,
)
from orchestration.resources import WarehouseResource
from policy import BooksPaths, Policy, load_policy, policy_dbt_vars, resolve_paths
from warehouse.lease import connect_warehouse
from warehouse.run_context import (
    RunContext,
    ensure_run_context_tables,
    read_run_context,
    write_run_context,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
ENV_WAREHOUSE = "BOOKS_WAREHOUSE"

# Model folders (the layer under models/) whose assets make the decisions; the rest transform.
DECIDE_LAYERS = frozenset({"decisions", "sync"})
GROUP_TRANSFORM = "transform"
GROUP_DECIDE = "decide"

# dbt selectors (dbt_project/selectors.yml): what a cycle builds (models + gate tests) and the
# data-quality tests the `books_quality` job runs on its own schedule.
CYCLE_SELECTOR = "books_cycle"
QUALITY_SELECTOR = "books_quality"
RUN_CONTEXT_KEY = dg.AssetKey(["ops", "run_context"])
RUN_CYCLE_IDS_KEY = dg.AssetKey(["ops", "run_cycle_ids"])

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _project_files(project_dir: Path) -> Iterator[Path]:
    yield project_dir / "dbt_project.yml"
    yield project_dir / "selectors.yml"
    for folder in ("models", "macros", "seeds", "snapshots", "tests"):
        root = project_dir / folder
        if root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """True when the manifest is missing or any project file changed after it was written."""
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _project_files(project_dir) if p.exists())


def _parse_manifest(project: DbtProject, paths: BooksPaths | None = None) -> None:
    """`dbt parse` into the project's target folder, with the vars and the warehouse of the
    cycle about to run (`paths`, default: resolved from the environment), so that cycle's dbt
    build reuses this parse: dbt reparses everything when the vars or the profile (it holds
    the warehouse path) differ.

    dbt writes into a scratch folder and the artifacts are then renamed into place: another
    process (a second run, a parallel test worker) that finds the manifest fresh never reads a
    half-written file."""
    paths = paths or resolve_paths()
    parse_vars = policy_dbt_vars(load_policy(paths.policy))
    target = Path(project.manifest_path).parent  # absolute; target_path is project-relative
    _drop_parse_if_selectors_changed(target / "partial_parse.msgpack", project)
    scratch = target / f".parse-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    if (target / "partial_parse.msgpack").is_file():  # reuse the last parse, as dbt would
        shutil.copy2(target / "partial_parse.msgpack", scratch / "partial_parse.msgpack")
    env = {**os.environ, ENV_WAREHOUSE: str(paths.warehouse)}  # absolute, as the build's
    cmd = [
        dbt_executable(),
        "parse",
        "--quiet",
        "--project-dir",
        str(project.project_dir),
        "--profiles-dir",
        str(project.profiles_dir),
        "--target-path",
        str(scratch),
        "--vars",
        json.dumps(parse_vars),
    ]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"dbt parse of {project.project_dir} failed (exit {done.returncode}):\n"
                f"{done.stdout[-4000:]}{done.stderr[-2000:]}"
            )
        # the manifest last: its fresh mtime is what tells other processes the parse is done
        for name in ("partial_parse.msgpack", "semantic_manifest.json", "manifest.json"):
            if (scratch / name).is_file():
                os.replace(scratch / name, target / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def dbt_manifest_path(project: DbtProject = dbt_project, paths: BooksPaths | None = None) -> Path:
    """The project's manifest, (re)built by `dbt parse` first if missing or stale; `paths`:
    the cycle the parse is for (see `_parse_manifest`)."""
    if manifest_is_stale(Path(project.project_dir), project.manifest_path):
        log.info("parsing dbt project %s", project.project_dir)
        run_with_concurrent_update_guard(
            project.manifest_path, _parse_manifest, project=project, paths=paths
        )
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


def run_context_for(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, policy: PolicyResource
) -> RunContext:
    """This run's ops.run_context row, from its tags (as-of date, run id, mode, ids)."""
    as_of = as_of_date_of(context)
    return RunContext(
        run_id=policy.run_id_for(context, as_of),
        as_of_date=as_of,
        policy_version=policy.version,
        cycle_mode=dbt_cycle_mode(mode_of(context)),
        cycle_ids=cycle_ids_of(context),
        dry_run=flag_of(context, TAG_DRY_RUN),
    )


def store_run_context(warehouse: str, wanted: RunContext) -> bool:
    """Write `wanted` to ops.run_context / ops.run_cycle_ids unless they already hold it.

    Returns True when it wrote. Both the `ops/run_context` asset and the dbt step call this,
    so a run that materialises the dbt models without that asset still builds as of its own
    date, never the previous run's.
    """
    with connect_warehouse(warehouse) as con:
        ensure_run_context_tables(con)  # and the other ops tables dbt reads
        if read_run_context(con) == wanted:
            return False
        write_run_context(
            con,
            wanted.run_id,
            wanted.as_of_date,
            wanted.policy_version,
            wanted.cycle_mode,
            wanted.cycle_ids,
            wanted.dry_run,
        )
    return True


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RUN_CONTEXT_KEY,
            group_name=GROUP_TRANSFORM,
            kinds={"duckdb"},
            metadata={"dagster/table_name": "ops.run_context"},
            description="The run's as-of date, run id, policy version and cycle mode (one row).",
        ),
        dg.AssetSpec(
            RUN_CYCLE_IDS_KEY,
            group_name=GROUP_TRANSFORM,
            kinds={"duckdb"},
            metadata={"dagster/table_name": "ops.run_cycle_ids"},
            description="The Signal__c / Account ids an out-of-cycle (signals, returns) run is about.",
        ),
    ],
    name="run_context",
    pool=DUCKDB_POOL,
)
def run_context_asset(
    context: dg.AssetExecutionContext, policy: PolicyResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """The run's parameters as data for dbt: every model computes as of this run's date and
    stamps this run's id, read from ops.run_context (not dbt vars, which would cost dbt a full
    reparse every run)."""
    wanted = run_context_for(context, policy)
    store_run_context(str(warehouse.warehouse_path), wanted)
    context.log.info(
        f"run context: {wanted.run_id} as of {wanted.as_of_date} ({wanted.cycle_mode}, "
        f"{len(wanted.cycle_ids)} ids)"
    )
    yield dg.MaterializeResult(
        asset_key=RUN_CONTEXT_KEY,
        metadata={
            "run_id": wanted.run_id,
            "as_of_date": wanted.as_of_date.isoformat(),
            "cycle_mode": wanted.cycle_mode,
            "dagster/row_count": 1,
        },
    )
    yield dg.MaterializeResult(
        asset_key=RUN_CYCLE_IDS_KEY, metadata={"dagster/row_count": len(wanted.cycle_ids)}
    )


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

        dbt gets the validated policy as vars and the run's as-of date from ops.run_context, so
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
    with _env(ENV_WAREHOUSE, warehouse):
        # The selection (--selector books_cycle, or the subset a user picked) comes from
        # dagster-dbt; unit tests are not in it (CI runs them against the default books.yml).
        args = ["build", "--vars", json.dumps(policy.dbt_vars())]
        invocation = dbt.cli(
            args, context=context, raise_on_error=False, target_path=warehouse_target(warehouse)
        )
        # Streamed: Dagster records each event while dbt runs instead of all of them after.
        try:
            for event in invocation.stream():
                if isinstance(event, dg.Output) and event.output_name in relations:
                    key = context.asset_key_for_output(event.output_name)
                    built[relations[event.output_name]] = key
                yield event
        finally:
            _stop(invocation)
    # Row counts of the built tables once dbt has released the DuckDB file (a materialization's
    # metadata is fixed when it is yielded, so they come as observations of the same assets).
    for relation, rows in count_rows(warehouse, sorted(built)).items():
        yield dg.AssetObservation(asset_key=built[relation], metadata={"dagster/row_count": rows})
    if not invocation.is_successful():
        failures = _failed_nodes(invocation)
        raise dg.Failure(
            description=f"dbt build failed for as-of {wanted.as_of_date}: "
            + ("; ".join(failures[:10]) or "see the dbt log in the step output"),
            metadata={
                "failed_nodes": len(failures),
                "dbt_target": dg.MetadataValue.path(str(invocation.target_path)),
            },
        )


TARGET_WAREHOUSE_FILE = "warehouse.path"
ORPHAN_TARGET_AGE_SECONDS = 24 * 3600


def warehouse_target(warehouse: str, project: DbtProject = dbt_project) -> Path:
    """One dbt target folder per warehouse file, kept between runs.

    dbt's partial parse is valid only for the same vars *and profile*, and the profile holds
    the warehouse path; dagster-dbt's default (a new folder per run, seeded with whatever the
    project's last parse was) would reparse fully whenever that parse was for another file.
    Runs on one warehouse are serialised by the `duckdb_writer` pool, so they never share it
    at the same time. Stale artifacts are removed so a crash cannot report an old run's result.
    The folder records its warehouse's path, so the folders of deleted warehouses (every test
    run makes some) can be removed (`_prune_orphan_targets`).
    """
    resolved = Path(warehouse).resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    root = Path(project.manifest_path).parent
    target = root / f"warehouse-{digest}"
    target.mkdir(parents=True, exist_ok=True)
    (target / TARGET_WAREHOUSE_FILE).write_text(str(resolved))
    (target / "run_results.json").unlink(missing_ok=True)
    _drop_parse_if_selectors_changed(target / "partial_parse.msgpack", project)
    _prune_orphan_targets(root, keep=target)
    return target


def _prune_orphan_targets(root: Path, keep: Path) -> None:
    """Remove the per-warehouse target folders whose warehouse file is gone, once untouched
    for a day (a first run writes its folder before its warehouse exists). A folder without
    the path record (made before it was kept) goes by age alone: at worst a warehouse that
    still exists parses fully once more."""
    cutoff = time.time() - ORPHAN_TARGET_AGE_SECONDS
    for folder in root.glob("warehouse-*"):
        try:
            if folder == keep or folder.stat().st_mtime > cutoff:
                continue
            record = folder / TARGET_WAREHOUSE_FILE
            if record.is_file() and Path(record.read_text().strip()).exists():
                continue
        except OSError:  # removed meanwhile by another process
            continue
        log.info("removing dbt target %s: unused for a day, its warehouse gone", folder)
        shutil.rmtree(folder, ignore_errors=True)


def _drop_parse_if_selectors_changed(saved_parse: Path, project: DbtProject) -> None:
    """dbt's partial parse keeps the selectors of the parse it reuses: after a selectors.yml
    change only a full parse sees the new ones."""
    selectors = Path(project.project_dir) / "selectors.yml"
    if saved_parse.is_file() and selectors.is_file():
        if selectors.stat().st_mtime > saved_parse.stat().st_mtime:
            saved_parse.unlink(missing_ok=True)


def _stop(invocation: Any) -> None:
    """End a dbt subprocess the step no longer reads (the step failed or was cancelled), so
    it does not keep building and holding the DuckDB file after its run is over."""
    process = invocation.process
    if process.poll() is None:
        log.warning("stopping dbt (pid %s): its Dagster step ended first", process.pid)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


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


class BooksDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without its per-invocation start-up cost (~4 s).

    Before each command dagster-dbt runs `dbt --version` in a subprocess and builds a dbt
    adapter in-process; the adapter only serves `fetch_row_counts()` / column metadata, which
    cannot read DuckDB while the dbt subprocess holds the file (row counts are read after dbt
    ends instead). The version comes from the installed dbt-core package, and no adapter is made.
    """

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource for the product's dbt project."""
    return BooksDbtCliResource(
        project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
    )


QUALITY_JOB_NAME = "books_quality"
# The quality tests are not asset checks (a check would join the cycle's gates); their results
# are recorded as observations of the tested assets.
QUALITY_TRANSLATOR = BooksDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=False)
)


@dg.op(name="dbt_quality_tests", pool=DUCKDB_POOL, out={})
def dbt_quality_tests(
    context: dg.OpExecutionContext,
    dbt: DbtCliResource,
    policy: PolicyResource,
    warehouse: WarehouseResource,
) -> Iterator[Any]:
    """Run the data-quality tests (selector `books_quality`) on the tables the last cycle built.

    Not a gate: nothing waits on it. Results are recorded on the tested assets; an error-level
    failure fails this run (visible and alertable) and never touches a write-back.
    """
    manifest = json.loads(dbt_manifest_path().read_text())
    args = ["test", "--selector", QUALITY_SELECTOR, "--vars", json.dumps(policy.dbt_vars())]
    with _env(ENV_WAREHOUSE, str(warehouse.warehouse_path)):
        invocation = dbt.cli(
            args,
            context=context,
            manifest=manifest,
            dagster_dbt_translator=QUALITY_TRANSLATOR,
            raise_on_error=False,
            target_path=warehouse_target(str(warehouse.warehouse_path)),
        )
        yield from invocation.stream()
    if not invocation.is_successful():
        failures = _failed_nodes(invocation)
        raise dg.Failure(
            description=f"{len(failures)} data-quality tests failed: " + "; ".join(failures[:10]),
            metadata={"failed_tests": len(failures)},
        )


@dg.job(
    name=QUALITY_JOB_NAME,
    description="The dbt data-quality tests that are not gates (dbt selector books_quality), on "
    "their own schedule; they never block a write-back.",
)
def books_quality_job() -> None:
    dbt_quality_tests()


def build_quality_schedule(policy: Policy) -> dg.ScheduleDefinition:
    """The `books_quality` job's schedule (books.yml `cadences.quality`, daily by default);
    the on/off switch is read again on every tick, like the other cadences."""
    cadence = policy.cadences.quality

    @dg.schedule(
        name="books_quality_schedule",
        cron_schedule=cadence.cron,
        job=books_quality_job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING
        if cadence.enabled
        else dg.DefaultScheduleStatus.STOPPED,
        description="Data-quality dbt tests (not gates) on the tables the last cycle built.",
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext, policy: PolicyResource
    ) -> dg.RunRequest | dg.SkipReason:
        if not policy.policy.cadences.quality.enabled:
            return dg.SkipReason(f"cadence 'quality' is switched off in {policy.resolved_path()}")
        tick = context.scheduled_execution_time
        return dg.RunRequest(run_key=f"quality:{tick.isoformat() if tick else 'manual'}")

    return _schedule


def mart_asset_keys(layer: str = "marts") -> list[dg.AssetKey]:
    """Keys of the dbt models in one layer folder (the report depends on the marts)."""
    nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    keys = []
    for spec in build_dbt_assets(dbt_project).specs:
        fqn = nodes.get(spec.metadata.get("dagster_dbt/unique_id"), {}).get("fqn") or []
        if len(fqn) > 2 and fqn[1] == layer:
            keys.append(spec.key)
    return sorted(keys, key=lambda k: k.to_user_string())
