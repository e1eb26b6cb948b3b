"""Speed to lead: a sensor's run carries the moment its trigger fired, and the write-back shows
the latency from that moment to the end of its CRM write in the Dagster metadata."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from orchestration import write_back
from orchestration.cycle import DUCKDB_POOL, TAG_TRIGGERED_AT, PolicyResource, cycle_tags
from orchestration.resources import WarehouseResource
from reverse_etl import ApplyReport, Plan

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "2025-06-02-signals-1-test"


class Crm:
    @contextmanager
    def open(self) -> Iterator[object]:
        yield object()


@dg.multi_asset(specs=[dg.AssetSpec(write_back.SYNC_MODEL_KEY)], pool=DUCKDB_POOL)
def _sync_model() -> Iterator[dg.MaterializeResult]:
    yield dg.MaterializeResult(asset_key=write_back.SYNC_MODEL_KEY)


def test_the_write_back_reports_the_time_from_trigger_to_crm_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[datetime] = []

    def plan(path: Any, run_id: str, **_: Any) -> Plan:
        return Plan(run_id, (), moves=0, owned_accounts=10, blocked_reasons=())

    def apply(conn: Any, path: Any, plan: Plan, **kwargs: Any) -> ApplyReport:
        time.sleep(0.2)  # the CRM calls
        written.append(datetime.now(UTC))
        return ApplyReport(plan.run_id, dry_run=False)

    monkeypatch.setattr(write_back, "plan_write_back", plan)
    monkeypatch.setattr(write_back, "apply_plan", apply)
    triggered = datetime.now(UTC) - timedelta(seconds=30)  # the sensor ticked 30 s ago
    tags = cycle_tags(
        date(2025, 6, 2), RUN_ID, mode="signals", extra={TAG_TRIGGERED_AT: triggered.isoformat()}
    )
    result = dg.materialize(
        [_sync_model, write_back.salesforce_write_back, write_back.write_back_guard],
        resources={
            "policy": PolicyResource(path=str(REPO / "books.yml")),
            "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
            "crm": Crm(),
        },
        tags=tags,
    )
    done = datetime.now(UTC)

    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == write_back.WRITE_BACK_KEY
    ]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    latency = metadata["trigger_latency_seconds"]
    # From the tick to the end of the CRM calls: at least the wait before the run and the
    # calls themselves, at most until the run was over.
    assert (written[0] - triggered).total_seconds() <= latency + 0.01
    assert latency <= (done - triggered).total_seconds()
    assert metadata["triggered_at"] == triggered.isoformat()


def test_a_run_without_a_trigger_reports_no_latency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        write_back, "plan_write_back", lambda p, r, **_: Plan(r, (), 0, 10, blocked_reasons=())
    )
    monkeypatch.setattr(
        write_back, "apply_plan", lambda c, p, plan, **_: ApplyReport(plan.run_id, dry_run=False)
    )
    result = dg.materialize(
        [_sync_model, write_back.salesforce_write_back, write_back.write_back_guard],
        resources={
            "policy": PolicyResource(path=str(REPO / "books.yml")),
            "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
            "crm": Crm(),
        },
        tags=cycle_tags(date(2025, 6, 2), RUN_ID),
    )
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == write_back.WRITE_BACK_KEY
    ]
    assert "trigger_latency_seconds" not in event.materialization.metadata
