"""Fixtures for the decision-engine tests: compile the dbt project once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.decisions.compiled_sql import CompiledModel, CompiledRunner, compile_models

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
INPUTS = (
    "int_accounts_classified",
    "int_reps_capacity",
    "int_users_classified",
    "stg_salesforce__accounts",
    "dec_run_context",
)
TARGETS = (
    "book_decisions",
    "dec_accounts_after",
    "dec_ownership_skew_warnings",
    "sync_salesforce__accounts",
)


def policy() -> dict:
    with (REPO / "books.yml").open() as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def compiled_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CompiledModel]:
    dbt_vars = {
        "as_of_date": "2025-01-06",
        "run_id": "test-run",
        "policy_version": "test-policy",
        "policy": policy(),
    }
    return compile_models(
        PROJECT_DIR,
        tmp_path_factory.mktemp("decisions_dbt"),
        dbt_vars,
        ["path:models/decisions", "path:models/sync"],
    )


@pytest.fixture(scope="session")
def engine(compiled_models: dict[str, CompiledModel]) -> Iterator[CompiledRunner]:
    runner = CompiledRunner(compiled_models, inputs=INPUTS, targets=TARGETS)
    yield runner
    runner.close()
