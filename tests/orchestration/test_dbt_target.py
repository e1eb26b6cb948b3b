"""One dbt target folder per warehouse file: kept while its warehouse exists, removed once the
warehouse is gone and the folder has been unused for a day (tests make many warehouses)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

from orchestration.dbt_parse import (
    ORPHAN_TARGET_AGE_SECONDS,
    TARGET_WAREHOUSE_FILE,
    warehouse_target,
)


def _age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(folder, (then, then))


def test_targets_of_gone_warehouses_are_pruned_once_unused_for_a_day(tmp_path: Path) -> None:
    project_dir = tmp_path / "dbt_project"
    project_dir.mkdir()
    project = SimpleNamespace(
        manifest_path=project_dir / "target" / "manifest.json", project_dir=project_dir
    )
    old = ORPHAN_TARGET_AGE_SECONDS + 60

    kept_warehouse = tmp_path / "kept" / "warehouse.duckdb"
    kept_warehouse.parent.mkdir()
    kept_warehouse.touch()
    kept = warehouse_target(str(kept_warehouse), project)
    gone = warehouse_target(str(tmp_path / "gone" / "warehouse.duckdb"), project)
    recent = warehouse_target(str(tmp_path / "recent" / "warehouse.duckdb"), project)
    unrecorded = kept.parent / "warehouse-0123456789ab"  # made before folders recorded a path
    unrecorded.mkdir()
    assert (kept / TARGET_WAREHOUSE_FILE).read_text() == str(kept_warehouse.resolve())
    for folder in (kept, gone, unrecorded):
        _age(folder, old)

    current = warehouse_target(str(tmp_path / "new" / "warehouse.duckdb"), project)

    left = sorted(p.name for p in kept.parent.glob("warehouse-*"))
    assert left == sorted(p.name for p in (kept, recent, current))
    # the same warehouse always gets the same folder
    assert warehouse_target(str(kept_warehouse), project) == kept


def test_a_new_warehouse_folder_starts_from_the_parse_of_a_warehouse_of_the_same_name(
    tmp_path: Path,
) -> None:
    """dbt sees only the warehouse's file name, so a parse made for `warehouse.duckdb` in one
    folder serves another folder's `warehouse.duckdb`; one for another name is not taken."""
    project_dir = tmp_path / "dbt_project"
    project_dir.mkdir()
    project = SimpleNamespace(
        manifest_path=project_dir / "target" / "manifest.json", project_dir=project_dir
    )
    older = warehouse_target(str(tmp_path / "a" / "warehouse.duckdb"), project)
    (older / "partial_parse.msgpack").write_bytes(b"older parse")
    _age(older / "partial_parse.msgpack", 60)
    newer = warehouse_target(str(tmp_path / "b" / "warehouse.duckdb"), project)
    (newer / "partial_parse.msgpack").write_bytes(b"newer parse")
    other = warehouse_target(str(tmp_path / "c" / "w.duckdb"), project)
    (other / "partial_parse.msgpack").write_bytes(b"parse for another file name")

    fresh = warehouse_target(str(tmp_path / "new" / "warehouse.duckdb"), project)
    lone = warehouse_target(str(tmp_path / "new" / "lone.duckdb"), project)

    assert (fresh / "partial_parse.msgpack").read_bytes() == b"newer parse"
    assert not (lone / "partial_parse.msgpack").exists()
    # a folder's own parse is never replaced
    assert warehouse_target(str(tmp_path / "c" / "w.duckdb"), project) == other
    assert (other / "partial_parse.msgpack").read_bytes() == b"parse for another file name"
