"""The gates before the CRM write: a failing gate means zero CRM connections and zero writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from orchestration import write_back
from orchestration.cycle import DUCKDB_POOL, PolicyResource, cycle_tags
from orchestration.resources import WarehouseResource
from reverse_etl import ApplyReport, Plan

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "2025-06-02-1-test"


class CountingCrm:
    """A `crm` resource that records every connection asked for."""

    def __init__(self) -> None:
        self.opened = 0

    @contextmanager
    def open(self) -> Iterator[object]:
        self.opened += 1
        yield object()


def _sync_model(fail: bool) -> dg.AssetsDefinition:
    """Stands in for the dbt step: yields the sync model, then fails if a dbt test failed."""

    @dg.multi_asset(specs=[dg.AssetSpec(write_back.SYNC_MODEL_KEY)], pool=DUCKDB_POOL)
    def dbt_models() -> Iterator[dg.MaterializeResult]:
        yield dg.MaterializeResult(asset_key=write_back.SYNC_MODEL_KEY)
        if fail:
            raise dg.Failure("dbt test not_null_sync_salesforce__accounts_account_id failed")

    return dbt_models


@pytest.fixture()
def applied(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every apply_plan call the write-back asset makes (the plan itself is stubbed below)."""
    calls: list[dict[str, Any]] = []

    def fake_apply(conn: Any, path: Any, plan: Plan, **kwargs: Any) -> ApplyReport:
        calls.append({"conn": conn, **kwargs})
        return ApplyReport(plan.run_id, dry_run=kwargs.get("dry_run", False))

    monkeypatch.setattr(write_back, "apply_plan", fake_apply)
    return calls


def _stub_plan(monkeypatch: pytest.MonkeyPatch, blocked: tuple[str, ...]) -> list[str]:
    planned: list[str] = []

    def fake_plan(path: Any, run_id: str, **_: Any) -> Plan:
        planned.append(run_id)
        return Plan(run_id, (), moves=900, owned_accounts=1000, blocked_reasons=blocked)

    monkeypatch.setattr(write_back, "plan_write_back", fake_plan)
    return planned


def _run(tmp_path: Path, crm: CountingCrm, *, fail_dbt: bool = False, **tags: bool):
    from datetime import date

    return dg.materialize(
        [_sync_model(fail_dbt), write_back.salesforce_write_back, write_back.write_back_guard],
        resources={
            "policy": PolicyResource(path=str(REPO / "books.yml")),
            "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
            "crm": crm,
        },
        tags=cycle_tags(date(2025, 6, 2), RUN_ID, **tags),
        raise_on_error=False,
    )


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == write_back.GUARD_CHECK_NAME
    return evaluation


def test_blocked_plan_fails_the_check_and_nothing_reaches_the_crm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applied: list[dict[str, Any]]
) -> None:
    planned = _stub_plan(monkeypatch, ("900 of 1000 owned accounts move to the pool (max 25%)",))
    crm = CountingCrm()
    result = _run(tmp_path, crm)
    assert not result.success
    assert planned == [RUN_ID]  # only the check planned: the write asset never started
    evaluation = _check(result)
    assert not evaluation.passed
    assert "900 of 1000" in (evaluation.description or "")
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert write_back.WRITE_BACK_KEY not in materialized
    assert crm.opened == 0 and applied == []


def test_failing_dbt_step_skips_the_guard_and_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applied: list[dict[str, Any]]
) -> None:
    planned = _stub_plan(monkeypatch, ())
    crm = CountingCrm()
    result = _run(tmp_path, crm, fail_dbt=True)
    assert not result.success
    assert planned == []  # the guard never ran
    assert crm.opened == 0 and applied == []


def test_clean_plan_passes_the_check_and_is_written_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applied: list[dict[str, Any]]
) -> None:
    planned = _stub_plan(monkeypatch, ())
    crm = CountingCrm()
    result = _run(tmp_path, crm)
    assert result.success
    assert _check(result).passed
    assert planned == [RUN_ID, RUN_ID]  # the check plans, the asset re-plans the same run
    assert crm.opened == 1
    assert [c["override_guard"] for c in applied] == [False]


def test_override_tag_lets_a_blocked_plan_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applied: list[dict[str, Any]]
) -> None:
    _stub_plan(monkeypatch, ("one book loses 80% of its accounts",))
    crm = CountingCrm()
    result = _run(tmp_path, crm, override_guard=True)
    assert result.success
    evaluation = _check(result)
    assert evaluation.passed and evaluation.metadata["overridden"].value is True
    assert [c["override_guard"] for c in applied] == [True]


def test_dry_run_of_a_blocked_plan_opens_no_crm_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applied: list[dict[str, Any]]
) -> None:
    _stub_plan(monkeypatch, ("900 of 1000 owned accounts move to the pool (max 25%)",))
    crm = CountingCrm()
    result = _run(tmp_path, crm, dry_run=True)
    assert result.success
    assert crm.opened == 0
    assert [(c["conn"], c["dry_run"]) for c in applied] == [(None, True)]
