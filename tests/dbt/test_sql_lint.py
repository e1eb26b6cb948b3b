"""Every dbt model passes sqlfluff (the house SQL style in `.sqlfluff`), in CI like ruff.

sqlfluff's dbt templater compiles the project against a warehouse: this one is a fresh file
with the ops tables the models read at compile time, so every model is linted (on a warehouse
without `ops.run_context` sqlfluff skips the models that introspect it, with only a warning).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from policy import load_policy, policy_dbt_env
from tests.dbt.dbt_helpers import DBT_PROJECT_DIR, POLICY_FILE, REPO_ROOT
from warehouse.run_context import ensure_run_context_tables

pytestmark = pytest.mark.slow


def test_every_model_passes_sqlfluff(tmp_path: Path) -> None:
    warehouse = tmp_path / "lint.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_run_context_tables(con)
    env = {
        **os.environ,
        "BOOKS_WAREHOUSE": str(warehouse),
        **policy_dbt_env(load_policy(POLICY_FILE)),  # what `make lint` sets
        # dbt's own target and logs, away from the checkout's (other tests run dbt meanwhile)
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    done = subprocess.run(
        [str(sqlfluff), "lint", "--format", "json", "--nofail", str(DBT_PROJECT_DIR / "models")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    files = json.loads(done.stdout)
    models = sorted(DBT_PROJECT_DIR.joinpath("models").rglob("*.sql"))
    linted = {Path(REPO_ROOT, f["filepath"]).resolve() for f in files}
    assert linted == set(models), f"not linted: {sorted(set(models) - linted)}\n{done.stderr}"
    findings = [
        f"{os.path.relpath(f['filepath'], REPO_ROOT)}:{v['start_line_no']}:{v['start_line_pos']}"
        f" {v['code']} {v['description']}"
        for f in files
        for v in f["violations"]
    ]
    assert not findings, "sqlfluff findings (fix them, or `make lint` to see them):\n" + "\n".join(
        findings
    )
