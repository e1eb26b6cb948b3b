"""The policy reaches dbt only through the environment (BOOKS_DBT_POLICY): `.sqlfluff` keeps no
copy of it to fall out of date, and dbt without it stops with a line saying how to give it."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunner

from policy import DBT_POLICY_ENV
from tests.dbt.dbt_helpers import DBT_PROJECT_DIR, REPO_ROOT

pytestmark = pytest.mark.slow


def test_sqlfluff_config_holds_no_copy_of_the_policy() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO_ROOT / ".sqlfluff")
    context = config["sqlfluff:templater:dbt:context"]
    assert "policy" not in context
    assert not [key for key, value in context.items() if "working_window_days" in value]


def test_dbt_without_the_policy_says_where_it_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DBT_POLICY_ENV, raising=False)
    monkeypatch.setenv("BOOKS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    result = dbtRunner().invoke(
        [
            "parse",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ]  # fmt: skip
    )
    assert not result.success
    message = str(result.exception)
    assert DBT_POLICY_ENV in message and "python -m policy books.yml" in message, message
