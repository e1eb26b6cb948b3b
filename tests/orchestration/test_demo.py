"""`run_demo` (what `books demo` / `make demo` runs) on a small world: it generates the local CRM
while dbt parses, runs a cycle that writes back, and a second call reuses the CRM it finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.dbt_parse import dbt_manifest_path, dbt_project, manifest_is_stale
from orchestration.runner import run_demo
from policy import resolve_paths
from tests.homes import home_env


@pytest.mark.slow
def test_demo_generates_a_world_runs_a_cycle_then_reuses_the_world(tmp_path: Path) -> None:
    paths = resolve_paths(home_env(tmp_path))
    lines: list[str] = []

    first = run_demo(
        lambda message, *_, **__: lines.append(message),
        paths=paths,
        accounts=300,
        reps=6,
        months=3,
    )

    assert first.generated and paths.crm_db.is_file()
    assert first.cycle.success, first.cycle.failed_steps
    assert first.cycle.write_back.get("applied", 0) > 0
    generating = next(i for i, line in enumerate(lines) if line.startswith("generating a 300"))
    loading = next(i for i, line in enumerate(lines) if line.startswith("loading definitions"))
    assert generating < loading
    assert not manifest_is_stale(Path(dbt_project.project_dir), dbt_manifest_path())

    second = run_demo(paths=paths, accounts=300, reps=6, months=3)

    assert not second.generated
    assert second.cycle.success, second.cycle.failed_steps
    assert second.cycle.as_of_date == first.cycle.as_of_date  # the CRM's clock, not a new demo date
