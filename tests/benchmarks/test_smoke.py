"""Smoke test of the benchmark harness: the S harness end to end on a tiny world, then the XL
path (`--replica-of`) on two copies of that world's raw layer.

No timing assertions (speed is measured by the benchmarks, never asserted): it checks that the
harness runs every kind, writes the results table with a row per stage, and that every stage
actually ran (a stage that failed or is missing would make the benchmark silently useless).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from benchmarks import ab, run
from benchmarks.results import DAGSTER, KINDS, STAGES
from benchmarks.scaling import exponent

TODAY = date(2025, 6, 2)
# the S harness, its XL replica and the A/B script: minutes; queued first (tests/conftest.py)
pytestmark = pytest.mark.long_pole


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setenv("BOOKS_BENCH_CACHE", str(home / "cache"))
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def results(home: Path) -> tuple[Path, dict]:
    md = run.run("S", "all", home / "results", accounts=500, today=TODAY)
    return md, json.loads(md.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def replica(home: Path, results) -> dict:
    """The XL path (`--replica-of`) in small: two copies of the smoke run's raw layer."""
    md = run.run_replica("S", "S", home / "replica", source_accounts=500, today=TODAY)
    return json.loads(md.with_suffix(".json").read_text())


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
    assert "## Targets" in text


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


@pytest.mark.slow
def test_ab_builds_both_versions_on_a_copy_and_finds_the_same_rows(home: Path, results) -> None:
    """The A/B script on the smoke run's warehouse, this checkout against itself: both
    versions timed, every model fingerprinted, the same rows, the source file untouched."""
    warehouse = home / "cache" / "work" / "S-500" / "direct" / "wh" / "warehouse.duckdb"
    before = warehouse.stat().st_mtime_ns
    text = ab.main(["--a", ab.WORKTREE, "--warehouse", str(warehouse), "--runs", "2",
                    "--selector", "books_cycle", "--scratch", str(home / "ab")])  # fmt: skip
    assert warehouse.stat().st_mtime_ns == before
    assert "run 2 " in text and "B/A = " in text
    same = [line for line in text.splitlines() if line.startswith("same rows in all ")]
    assert same and int(same[0].split()[4]) >= 50, text
    assert "NOT DETERMINISTIC" not in text, text


def test_ab_report_names_models_that_differ_or_are_unstable() -> None:
    def version(label: str, *prints: dict) -> ab.Version:
        v = ab.Version(label, label, Path("."), Path("."), walls=[1.0] * len(prints))
        v.fingerprints = list(prints)
        return v

    a = version("A", {"m1": (1, 10), "m2": (2, 20)}, {"m1": (1, 10), "m2": (2, 20)})
    b = version("B", {"m1": (1, 10), "m2": (2, 21)}, {"m1": (1, 11), "m2": (2, 21)})
    text = ab.report(a, b, top=3)
    assert "rows differ in 2 models" in text
    assert "NOT DETERMINISTIC: B's own 2 builds disagree in m1" in text
    assert "A's own" not in text


def test_growth_exponent_recovers_the_power() -> None:
    assert math.isclose(exponent(1e5, 2.0, 1e6, 20.0), 1.0)
    assert math.isclose(exponent(1e5, 1.0, 1e6, 100.0), 2.0)


@pytest.mark.slow
def test_replica_full_rebuild_ran_every_stage(replica) -> None:
    assert replica["accounts"] == 2 * 500
    full = replica["kinds"]["full"]
    names = [s["name"] for s in full["stages"]]
    assert names == ["contracts", "dbt build", "decisions", "write-back", "report"]
    for stage in [*full["stages"], *full["limits"].values()]:
        assert stage["status"] == "ok", f"{stage['name']}: {stage['error']}"
    assert full["stages"][3]["data"]["plan_only"] and full["stages"][3]["data"]["changes"] > 0


# Copy 1 read back as copy 0: the ids' copy digit, the domain and e-mail tags, the name tag.
def _as_copy_0(column: str, data_type: str) -> str:
    col = f'"{column}"'
    if data_type != "VARCHAR":  # doubles too: scores are summed exactly (macros/exact_sum.sql)
        return col
    col = rf"regexp_replace({col}, '([0-9A-Za-z]{{3}}Dy)1([0-9A-Za-z]{{12}})', '\10\2', 'g')"
    col = rf"regexp_replace({col}, '[.][ku]1\b', '', 'g')"
    return rf"regexp_replace({col}, '^[Xx][Kk]1', '')"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("table", "key"),
    [("marts.accounts", "account_id"), ("marts.account_fit_components", "account_id"),
     ("intermediate.int_account_touches_aggregated", "account_id"),
     ("intermediate.int_leads_matched", "lead_id"), ("marts.rep_kpis", "rep_id")],
)  # fmt: skip
def test_each_replica_copy_builds_what_its_source_builds(replica, table: str, key: str) -> None:
    """Copy 1 of the raw layer must build, row for row, what copy 0 (the source's own rows)
    builds: else the XL figures would time a different workload. The decisions are not
    compared: pool-wide caps and rotation span both copies, as they would span one XL world."""
    with duckdb.connect(replica["warehouse"], read_only=True) as con:
        schema, name = table.split(".")
        columns = con.execute(
            "select column_name, data_type from duckdb_columns() "
            "where schema_name = ? and table_name = ? order by column_index", [schema, name],
        ).fetchall()  # fmt: skip
        # an md5 of a copy's own ids, kept by the incremental touches: no copy tag to strip
        columns = [(c, t) for c, t in columns if c != "file_inputs_hash"]
        select = ", ".join(_as_copy_0(c, t) for c, t in columns)

        def copy(k: int) -> str:
            return f"select {select} from {table} where substr({key}, 6, 1) = '{k}'"

        rows = con.execute(f"select count(*) from ({copy(0)})").fetchone()[0]
        only_0 = con.execute(f"select * from ({copy(0)} except all {copy(1)}) limit 3").fetchall()
        only_1 = con.execute(f"select * from ({copy(1)} except all {copy(0)}) limit 3").fetchall()
    assert rows > 0
    assert only_0 == [] and only_1 == [], f"{table}: copy 0 {only_0} vs copy 1 {only_1}"
