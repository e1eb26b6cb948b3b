"""Smoke test of the benchmark harness: the S harness end to end on a tiny world.

No timing assertions (speed is measured by the benchmarks, never asserted): it checks that the
harness runs every kind, writes the results table with a row per stage, and that every stage
actually ran (a stage that failed or is missing would make the benchmark silently useless).
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.results import DAGSTER, KINDS, STAGES
from benchmarks.scaling import exponent

TODAY = date(2025, 6, 2)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setenv("BOOKS_BENCH_CACHE", str(home / "cache"))
    try:
        md = run.run("S", "all", home / "results", accounts=500, today=TODAY)
    finally:
        mp.undo()
    return md, json.loads(md.with_suffix(".json").read_text())


@pytest.mark.slow
def test_results_table_has_a_row_per_stage_and_kind(results) -> None:
    md, data = results
    assert md.name == f"{TODAY.isoformat()}-S.md"
    text = md.read_text()
    assert data["accounts"] == 500
    for kind in KINDS:
        assert kind in data["kinds"]
    sections = text.split("\n## ")[1:4]
    assert len(sections) == len(KINDS)
    for section in sections:
        for name in (*STAGES, DAGSTER):
            rows = [line for line in section.splitlines() if line.startswith(f"| {name} |")]
            assert len(rows) == 1, f"no single row for {name!r} in:\n{section}"
    assert "## Targets (issue 8)" in text


@pytest.mark.slow
def test_every_stage_ran_and_was_measured(results) -> None:
    _, data = results
    for kind_name, kind in data["kinds"].items():
        for stage in [*kind["stages"], kind["dagster"], *kind["limits"].values()]:
            assert stage["status"] == "ok", f"{kind_name}/{stage['name']}: {stage['error']}"
            assert stage["seconds"] > 0 and stage["peak_rss_mib"] > 0
    wb = next(s for s in data["kinds"]["initial"]["stages"] if s["name"] == "write-back")
    assert wb["data"]["changes"] > 0 and wb["data"]["api_calls"] > 0
    daily = next(s for s in data["kinds"]["daily"]["stages"] if s["name"] == "extract")
    assert 0 < daily["data"]["crm_rows_loaded"] < data["activities"]


def test_growth_exponent_recovers_the_power() -> None:
    assert math.isclose(exponent(1e5, 2.0, 1e6, 20.0), 1.0)
    assert math.isclose(exponent(1e5, 1.0, 1e6, 100.0), 2.0)
