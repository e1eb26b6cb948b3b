"""The `dbt parse` made when definitions load is made for the cycle about to run (its warehouse
and policy), so that cycle's dbt build reuses it: dbt parses the whole project again when the
profile (which holds the warehouse path) or the vars differ from the saved parse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.dbt_parse import DBT_PROJECT_DIR, dbt_executable, dbt_manifest_path
from policy import load_policy, policy_dbt_vars, resolve_paths
from tests.homes import home_env


def _dbt_log_events(target: Path) -> list[dict]:
    return [json.loads(line) for line in (target / "dbt.log").read_text().splitlines() if line]


def test_the_cycle_reuses_the_parse_made_for_its_own_warehouse(tmp_path: Path) -> None:
    project_dir = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    # not the environment's warehouse: a cycle started with explicit paths (tests, benchmarks)
    paths = resolve_paths(home_env(tmp_path / "home"))
    assert str(paths.warehouse) != os.environ.get("BOOKS_WAREHOUSE")

    manifest = dbt_manifest_path(project, paths)  # missing, so parsed now

    assert manifest.is_file()
    # What the cycle's build gets (warehouse_target, seeded by dagster-dbt): a folder of its
    # own holding the project's saved parse, and the cycle's warehouse in the environment.
    build_target = tmp_path / "build-target"
    build_target.mkdir()
    shutil.copy2(manifest.parent / "partial_parse.msgpack", build_target)
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
            str(build_target),
            "--log-path",
            str(build_target),
            "--vars",
            json.dumps(policy_dbt_vars(load_policy(paths.policy))),
        ],  # fmt: skip
        env={**os.environ, "BOOKS_WAREHOUSE": str(paths.warehouse)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    codes = {e["info"]["code"]: e for e in _dbt_log_events(build_target)}
    assert "I024" not in codes, codes["I024"]["info"]["msg"]  # "Unable to do partial parsing"
    assert "I017" in codes  # "Partial parsing enabled, no changes found"
