"""The `dbt parse` made when definitions load serves every cycle of the project and policy,
whatever folder its warehouse is in: dbt parses the whole project again when the profile
(which holds the warehouse path) differs from the saved parse, so dbt sees only the file name. The policy reaches dbt
through the environment, never the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.dbt_cli import dbt_resource
from orchestration.dbt_parse import (
    DBT_PROJECT_DIR,
    dbt_executable,
    dbt_manifest_path,
    dbt_run_env,
)
from policy import load_policy, policy_dbt_env, resolve_paths
from tests.homes import home_env


def _dbt_log_events(target: Path) -> list[dict]:
    return [json.loads(line) for line in (target / "dbt.log").read_text().splitlines() if line]


def test_a_new_warehouse_folder_reuses_the_projects_parse(tmp_path: Path) -> None:
    """A cycle on a warehouse in a new folder (a test's, a benchmark world's, a lab arm's)
    gets the project's saved parse (dagster-dbt seeds its target folder with it) and dbt reuses
    it: the path dbt hashes into its profile is the file name, not the folder."""
    project_dir = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    paths = resolve_paths(home_env(tmp_path / "home"))

    manifest = dbt_manifest_path(project, paths)  # missing, so parsed now

    assert manifest.is_file()
    # The build of a cycle on another warehouse folder: a target of its own holding the
    # project's saved parse, dbt run as the cycle's dbt resource runs it.
    other = tmp_path / "elsewhere" / paths.warehouse.name
    other.parent.mkdir()
    build_target = tmp_path / "build-target"
    build_target.mkdir()
    shutil.copy2(manifest.parent / "partial_parse.msgpack", build_target)
    done = subprocess.run(
        [
            dbt_resource().dbt_executable,
            "parse",
            "--log-format-file",
            "json",
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(project_dir),
            "--target-path",
            str(build_target),
            "--log-path",
            str(build_target),
        ],  # fmt: skip
        env={
            **os.environ,
            **dbt_run_env(other),
            **policy_dbt_env(load_policy(paths.policy)),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    codes = {e["info"]["code"]: e for e in _dbt_log_events(build_target)}
    assert "I024" not in codes, codes["I024"]["info"]["msg"]  # "Unable to do partial parsing"
    assert "I017" in codes  # "Partial parsing enabled, no changes found"


def _copy_project(tmp_path: Path) -> DbtProject:
    project_dir = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir)


def test_the_policy_is_not_on_dbts_command_line(tmp_path: Path) -> None:
    """dbt logs the arguments it runs with (and Dagster prints the dbt command): the policy
    must not be among them, it goes by the environment."""
    project = _copy_project(tmp_path)
    paths = resolve_paths(home_env(tmp_path / "home"))

    dbt_manifest_path(project, paths)

    log = (Path(project.project_dir) / "logs" / "dbt.log").read_text()
    assert "running dbt with arguments" in log
    assert "working_window_days" not in log, "the policy is on dbt's command line"


def _parse(project_dir: Path, target: Path, warehouse: Path, policy: dict) -> list[dict]:
    """`dbt parse` as the cycle's build parses; the events it logged."""
    (target / "dbt.log").unlink(missing_ok=True)
    done = subprocess.run(
        [
            dbt_executable(),
            "parse",
            "--log-format-file",
            "json",
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(project_dir),
            "--target-path",
            str(target),
            "--log-path",
            str(target),
        ],  # fmt: skip
        env={**os.environ, "BOOKS_WAREHOUSE": str(warehouse), **policy_dbt_env(policy)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    return _dbt_log_events(target)


def test_a_policy_change_reparses_only_the_models_that_read_it(tmp_path: Path) -> None:
    """A books.yml change keeps dbt's partial parse (a changed `--vars` threw it all away), and
    the models that read the changed policy are parsed again."""
    project = _copy_project(tmp_path)
    paths = resolve_paths(home_env(tmp_path / "home"))
    policy = load_policy(paths.policy).model_dump(mode="json")
    target = tmp_path / "target"
    _parse(Path(project.project_dir), target, paths.warehouse, policy)  # the first: full

    policy["lifecycle"]["working_window_days"] += 1
    events = _parse(Path(project.project_dir), target, paths.warehouse, policy)

    codes = {e["info"]["code"] for e in events}
    assert "I024" not in codes, "a policy change made dbt parse the whole project again"
    assert "I017" not in codes, "dbt found no change: the models reading the policy kept theirs"
