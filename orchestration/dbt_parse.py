"""The dbt project's parse state: its manifest and one target folder per warehouse file.

Manifest preparation: `dbt_manifest_path()` runs `dbt parse` when
`dbt_project/target/manifest.json` is missing or older than any file of the dbt project, at
definitions load time. `DbtProject.prepare_if_dev()` alone is not enough: it only acts under
`dagster dev`, while the CLI runner, pytest and CI load the definitions in plain Python; and
its `prepare()` parses in place (a parallel process can read a half-written manifest), through
a plain `DbtCliResource` (its 4-9 s start-up, see dbt_cli.py), for no other warehouse than the
environment's. The parse gets the policy in its environment (`policy.policy_dbt_env`, never
`--vars`), because models read the policy while being parsed.

One parse serves every warehouse file of one name (`warehouse.duckdb` of the demo, each
benchmark world, each lab arm): dbt 1.11 keeps a partial parse only for the same profile and
hashes the rendered connection, path included, so dbt always runs through
`dbt_in_warehouse_dir` (beside this module), which starts it in the warehouse's folder with the
profile's path relative to it. A new warehouse folder then reuses the project's parse instead
of parsing fully (12-14 s at start-up), and a new file name parses fully once.

Why a cycle's dbt step is fast: dbt gets no vars (the run's as-of date, id and mode are rows in
ops.run_context, warehouse/run_context.py) and the same policy as the parse, so dbt reuses the
partial parse kept in the warehouse's own target folder (`warehouse_target`).
"""

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from dagster_dbt import DbtProject

from policy import BooksPaths, load_policy, policy_dbt_env, resolve_paths

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
ENV_WAREHOUSE = "BOOKS_WAREHOUSE"
ENV_DBT_EXECUTABLE = "BOOKS_DBT_EXECUTABLE"
DBT_IN_WAREHOUSE_DIR = Path(__file__).with_name("dbt_in_warehouse_dir")

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
    """`dbt parse` into the project's target folder, with the policy and the warehouse of the
    cycle about to run (`paths`, default: resolved from the environment), so that cycle's dbt
    build reuses this parse: dbt reparses everything when the profile (it holds the warehouse
    path) differs, and the models that read the policy when it differs.

    dbt writes into a scratch folder and the artifacts are then renamed into place: another
    process (a second run, a parallel test worker) that finds the manifest fresh never reads a
    half-written file."""
    paths = paths or resolve_paths()
    target = Path(project.manifest_path).parent  # absolute; target_path is project-relative
    _drop_parse_if_selectors_changed(target / "partial_parse.msgpack", project)
    scratch = target / f".parse-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    if (target / "partial_parse.msgpack").is_file():  # reuse the last parse, as dbt would
        shutil.copy2(target / "partial_parse.msgpack", scratch / "partial_parse.msgpack")
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)  # where dbt runs
    env = {  # the build's environment: the warehouse, the policy
        **os.environ,
        **dbt_run_env(paths.warehouse),
        **policy_dbt_env(load_policy(paths.policy)),
    }
    cmd = [
        str(DBT_IN_WAREHOUSE_DIR),
        "parse",
        "--quiet",
        "--project-dir",
        str(project.project_dir),
        "--profiles-dir",
        str(project.profiles_dir),
        "--target-path",
        str(scratch),
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
    manifest = Path(project.manifest_path)
    if manifest_is_stale(Path(project.project_dir), manifest):
        seen = manifest.stat().st_mtime if manifest.is_file() else 0.0
        manifest.parent.mkdir(parents=True, exist_ok=True)
        with open(manifest.with_suffix(".parse-lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one parse at a time; released on close
            # a process that parsed while this one waited leaves a newer manifest: reuse it
            if not (manifest.is_file() and manifest.stat().st_mtime > seen):
                log.info("parsing dbt project %s", project.project_dir)
                _parse_manifest(project, paths)
    return manifest


TARGET_WAREHOUSE_FILE = "warehouse.path"
PARTIAL_PARSE = "partial_parse.msgpack"
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
    _seed_parse(target, root, resolved.name)  # copied with its mtime: checked next line
    _drop_parse_if_selectors_changed(target / PARTIAL_PARSE, project)
    _prune_orphan_targets(root, keep=target)
    return target


def _seed_parse(target: Path, root: Path, warehouse_name: str) -> None:
    """Give a new target folder the newest parse made for a warehouse file of the same name.

    dagster-dbt seeds a folder without a parse from the project's own (`dbt_manifest_path`),
    made for the warehouse of the environment; a parse for the same file name elsewhere (the
    tests' and lab's warehouses) is as good. dbt checks what it reuses (files, policy, profile)
    and parses again what changed, so a wrong guess costs a parse, never a wrong build.
    """
    if (target / PARTIAL_PARSE).is_file():
        return
    candidates = []
    for folder in root.glob("warehouse-*"):
        try:
            record = (folder / TARGET_WAREHOUSE_FILE).read_text().strip()
            if Path(record).name == warehouse_name and (folder / PARTIAL_PARSE).is_file():
                candidates.append(((folder / PARTIAL_PARSE).stat().st_mtime, folder))
        except OSError:  # a folder without a record, or removed meanwhile
            continue
    if candidates:
        source = max(candidates)[1] / PARTIAL_PARSE
        scratch = target / f".seed-{os.getpid()}"
        shutil.copy2(source, scratch)
        os.replace(scratch, target / PARTIAL_PARSE)  # never a half-copied parse


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


def dbt_run_env(warehouse: str | Path) -> dict[str, str]:
    """What `dbt_in_warehouse_dir` needs to run dbt on `warehouse`: its absolute path and the
    dbt to run."""
    return {
        ENV_WAREHOUSE: str(Path(warehouse).resolve()),
        ENV_DBT_EXECUTABLE: dbt_executable(),
    }


def dbt_executable() -> str:
    """The dbt next to this Python (the venv's), so a PATH without .venv/bin still works."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def main() -> int:
    """`python -m orchestration.dbt_parse`: parse the dbt project now for the environment's
    policy (`make setup` does, so the first `books demo` or `books run` starts without it)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    manifest = dbt_manifest_path()
    log.info("dbt manifest ready: %s (%.1fs)", manifest, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
