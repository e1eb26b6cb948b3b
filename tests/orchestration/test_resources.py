"""The one warehouse resource: explicit paths win; empty ones resolve at run time, not import."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.resources import WarehouseResource


def test_empty_paths_resolve_from_the_environment_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = WarehouseResource()
    monkeypatch.setenv("BOOKS_WAREHOUSE", str(tmp_path / "late.duckdb"))
    monkeypatch.setenv("BOOKS_LANDING", str(tmp_path / "drop"))
    assert resource.warehouse_path == tmp_path / "late.duckdb"
    assert resource.landing_path == tmp_path / "drop"


def test_explicit_paths_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKS_WAREHOUSE", str(tmp_path / "env.duckdb"))
    resource = WarehouseResource(path=str(tmp_path / "w.duckdb"), landing_dir=str(tmp_path / "l"))
    assert resource.warehouse_path == tmp_path / "w.duckdb"
    assert resource.landing_path == tmp_path / "l"
