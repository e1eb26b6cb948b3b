"""Fixtures for the decision-engine tests: compile the dbt project once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbt.dbt_helpers import policy_vars
from tests.decisions.compiled_sql import CompiledModel, CompiledRunner, compile_models

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
INPUTS = (
    "int_accounts_classified",
    "int_reps_capacity",
    "int_users_classified",
    "stg_salesforce__accounts",
    "stg_salesforce__opportunities",
    "stg_salesforce__leads",
    "int_leads_matched",
    "stg_salesforce__signals",
    "dec_run_context",
)
TARGETS = (
    "book_decisions",
    "dec_accounts_after",
    "dec_run_candidates",
    "dec_run_rep_capacity",
    "dec_ownership_skew_warnings",
    "sync_salesforce__accounts",
)
# Steps 1-3 of the engine, given as (empty) inputs to the distribution runner: on the fairness
# worlds (no return requests, no stale, hot or owned accounts) they decide nothing, which
# test_fair_rounds_and_rotation checks once with the full engine.
DISTRIBUTION_STUBS = ("dec_returns", "dec_retrievals", "dec_signal_routes")


@pytest.fixture(scope="session")
def compiled_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CompiledModel]:
    return compile_models(
        PROJECT_DIR,
        tmp_path_factory.mktemp("decisions_dbt"),
        {**policy_vars("2025-01-06", run_id="test-run"), "cycle_mode": "full", "dry_run": False},
        ["path:models/decisions", "path:models/sync"],
    )


@pytest.fixture(scope="session")
def engine(compiled_models: dict[str, CompiledModel]) -> Iterator[CompiledRunner]:
    """A runner of the whole engine (decisions, accounts after, sync payload)."""
    runner = CompiledRunner(compiled_models, inputs=INPUTS, targets=TARGETS)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def distribution_engine(compiled_models: dict[str, CompiledModel]) -> Iterator[CompiledRunner]:
    """A runner of step 4 (capacity, candidate units, distributions), steps 1-3 as inputs."""
    runner = CompiledRunner(
        compiled_models, inputs=INPUTS + DISTRIBUTION_STUBS, targets=("dec_distributions",)
    )
    yield runner
    runner.close()
