"""Run the dbt project from tests: vars from the policy, an isolated target dir per call."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
from dbt.cli.main import dbtRunner, dbtRunnerResult

from policy import DBT_POLICY_ENV, load_policy, policy_dbt_env, to_dbt_vars
from warehouse.run_context import ensure_run_context_tables

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
POLICY_FILE = REPO_ROOT / "books.yml"


def policy_vars(
    as_of_date: str, run_id: str = "test-run", policy_file: Path = POLICY_FILE
) -> dict[str, Any]:
    """Every run value as a dbt var (an ad-hoc run: no ops.run_context needed), from the
    validated policy: a full, real (not dry) run."""
    return {
        **to_dbt_vars(load_policy(policy_file), as_of_date=as_of_date, run_id=run_id),
        "cycle_mode": "full",
        "dry_run": False,
    }


def run_dbt(
    args: list[str], warehouse: Path, dbt_vars: dict[str, Any], work_dir: Path
) -> dbtRunnerResult:
    """Invoke dbt in-process against `warehouse`, with target/log paths under `work_dir`."""
    os.environ["BOOKS_WAREHOUSE"] = str(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        ensure_run_context_tables(con)  # the ops tables dbt reads, as a cycle makes them
    return dbtRunner().invoke(_cli_args(args, dbt_vars, work_dir))


def _cli_args(args: list[str], dbt_vars: dict[str, Any], work_dir: Path) -> list[str]:
    """`args` plus this project, its profile, per-test target/log paths and the run's vars;
    `dbt_vars["policy"]` goes to the environment, as the product passes it (`policy_dbt_env`)."""
    run_vars = {name: value for name, value in dbt_vars.items() if name != "policy"}
    if "policy" in dbt_vars:
        os.environ.update(policy_dbt_env(dbt_vars["policy"]))
    else:
        os.environ.pop(DBT_POLICY_ENV, None)
    return [
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--vars",
        json.dumps(run_vars),
    ]


def failures(result: dbtRunnerResult) -> list[str]:
    """Readable names and messages of the nodes that failed or errored (warnings are data-quality
    findings on deliberately dirty generated data, by design)."""
    if result.exception is not None:
        return [repr(result.exception)]
    if not isinstance(getattr(result.result, "results", None), list):
        return [] if result.success else [f"dbt failed: {result.result!r}"[:500]]
    out = []
    for node_result in result.result.results:
        status = str(getattr(node_result, "status", ""))
        if status.lower() not in ("success", "pass", "warn"):  # warn: dirty data, counted
            out.append(f"{node_result.node.unique_id}: {status}: {node_result.message}")
    return out


def render_policy_filters(dbt_vars: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """The SQL dbt renders for the policy's segment filters and fit rules (the one renderer,
    `macros/policy_filter.sql`), via `dbt run-operation render_policy_filters`.

    Raises RuntimeError with dbt's message when the policy does not compile.
    """
    logged: list[str] = []

    def keep_jinja_log(event: Any) -> None:
        if event.info.name == "JinjaLogInfo":
            logged.append(event.data.msg)

    os.environ["BOOKS_WAREHOUSE"] = str(work_dir / "render.duckdb")
    result = dbtRunner(callbacks=[keep_jinja_log]).invoke(
        _cli_args(["run-operation", "render_policy_filters"], dbt_vars, work_dir)
    )
    if not result.success or not logged:
        raise RuntimeError(f"render_policy_filters failed: {result.exception or result.result}")
    return json.loads(logged[-1])
