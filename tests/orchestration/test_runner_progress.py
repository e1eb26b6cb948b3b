"""`books run` progress: one line per finished step with its time and the rows it loaded; the
start of a step is in the log only (the console shows it with -v)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pytest

from orchestration.execution import _step_listener


def _entry(kind: str, step: str, at: float, data: Any = None) -> SimpleNamespace:
    event = SimpleNamespace(
        event_type_value=kind, step_key=step, event_specific_data=data, message=""
    )
    return SimpleNamespace(dagster_event=event, timestamp=at)


def _materialized(path: list[str], **metadata: Any) -> SimpleNamespace:
    values = {k: dg.MetadataValue.int(v) for k, v in metadata.items()}
    return SimpleNamespace(
        materialization=SimpleNamespace(asset_key=dg.AssetKey(path), metadata=values)
    )


def test_one_line_per_finished_step_with_time_and_rows(caplog: pytest.LogCaptureFixture) -> None:
    lines: list[str] = []
    collected: dict[str, Any] = {"failed": [], "reasons": {}, "checks": {}, "materialized": {}}
    on_event = _step_listener(lambda message, *_, **__: lines.append(message), collected)
    with caplog.at_level(logging.INFO, logger="orchestration.execution"):
        for entry in [
            _entry("STEP_START", "salesforce_raw", 100.0),
            _entry("ASSET_MATERIALIZATION", "salesforce_raw", 101.0,
                   _materialized(["salesforce", "account"], rows_loaded=300)),
            _entry("ASSET_MATERIALIZATION", "salesforce_raw", 102.0,
                   _materialized(["salesforce", "user"], rows_loaded=14)),
            _entry("STEP_SUCCESS", "salesforce_raw", 105.5),
            _entry("STEP_START", "run_context", 106.0),
            _entry("ASSET_MATERIALIZATION", "run_context", 106.5,
                   _materialized(["ops", "run_context"], **{"dagster/row_count": 1})),
            _entry("STEP_SUCCESS", "run_context", 107.0),
        ]:  # fmt: skip
            on_event(entry)
    assert lines == [
        "step salesforce_raw done in 5.5s, 314 rows",
        "step run_context done in 1.0s, 1 row",
    ]
    assert "step salesforce_raw started" in caplog.messages
    assert len(collected["materialized"]) == 3
