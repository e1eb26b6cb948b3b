"""A cycle finishes interrupted write-backs before it reads the CRM (dry runs write nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from orchestration import ingest
from orchestration.cycle import PolicyResource, cycle_tags
from orchestration.resources import WarehouseResource

REPO = Path(__file__).resolve().parents[2]


class FakeCrm:
    @contextmanager
    def open(self) -> Iterator[str]:
        yield "connection"


class ExtractReached(Exception):
    """Stops the asset once the extract starts: only the order of calls matters here."""


def _materialize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **tags: bool) -> list[str]:
    calls: list[str] = []

    def fake_recover(conn: Any, path: Path, **_: Any) -> int:
        calls.append(f"recover:{conn}:{path.name}")
        return 3

    def fake_extract(conn: Any, path: Path, **_: Any) -> None:
        calls.append(f"extract:{conn}")
        raise ExtractReached

    monkeypatch.setattr(ingest, "recover", fake_recover)
    monkeypatch.setattr(ingest, "run_salesforce_ingest", fake_extract)
    result = dg.materialize(
        [ingest.salesforce_raw],
        resources={
            "crm": FakeCrm(),
            "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
            "policy": PolicyResource(path=str(REPO / "books.yml")),
        },
        tags=cycle_tags(date(2025, 6, 2), "run-1", **tags),
        raise_on_error=False,
    )
    assert not result.success  # ExtractReached
    return calls


def test_recovery_runs_before_the_extract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _materialize(tmp_path, monkeypatch)
    assert calls == ["recover:connection:w.duckdb", "extract:connection"]


def test_dry_run_skips_recovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _materialize(tmp_path, monkeypatch, dry_run=True) == ["extract:connection"]
