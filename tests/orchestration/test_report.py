"""The HTML run report, built from a tiny hand-made warehouse."""

from __future__ import annotations

import base64
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestration.report_html import build_report, gini, write_report

AS_OF = date(2025, 6, 2)


def _warehouse(path: Path, *, with_decisions: bool = True) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema intermediate; create schema decisions")
        con.execute(
            """
            create table marts.accounts as select * from (values
                ('001a', 'smb', 'ready', null, null::date),
                ('001b', 'smb', 'ready', null, null::date),
                ('001c', 'smb', 'working', 'r1', date '2025-06-03'),
                ('001d', 'enterprise', 'stale', 'r2', date '2025-01-01'),
                ('001e', 'enterprise', 'working', 'r2', null::date),
                ('001f', 'enterprise', 'converted', 'r2', null::date)
            ) as t(account_id, segment_key, state, owner_id, last_meaningful_touch_date)
            """
        )
        con.execute(
            """
            create table intermediate.int_reps_capacity as select * from (values
                ('r1', 'Rep One', 'smb', 'fit', true, 10, 1, 9, 5),
                ('r2', 'Rep Two', 'enterprise', 'fit', true, 10, 2, 8, 4),
                ('r3', 'Rep Three', 'enterprise', 'fit', false, 10, 0, 10, 5)
            ) as t(rep_id, rep_name, segment_key, slot_kind, is_eligible, capacity,
                   current_count, open_slots, max_new_per_run)
            """
        )
        con.execute(
            """
            create table decisions.dec_run_candidates as select * from (values
                ('001a', 'smb', false, true, 'no_capacity'),
                ('001b', 'smb', false, false, 'lower_rank'),
                ('001c', 'smb', true, false, null)
            ) as t(account_id, segment_key, is_chosen, is_hot, exclusion_reason)
            """
        )
        rows = "('run1', date '2025-06-02', '001c', 'distribute')" if with_decisions else ""
        con.execute(
            "create table decisions.book_decisions (run_id varchar, as_of_date date, "
            "account_id varchar, decision_kind varchar)"
        )
        if rows:
            con.execute(f"insert into decisions.book_decisions values {rows}")
    return path


def test_report_has_every_section_with_a_chart(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "w.duckdb")
    out = tmp_path / "reports" / "r.html"
    report = write_report(warehouse, out, AS_OF, "run1")
    text = out.read_text()
    assert [s.title for s in report.sections] == [
        "Coverage",
        "Book balance",
        "Supply runway",
        "Held in the pool",
        "Distribution cohorts",
    ]
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert len(images) == 4
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert report.figures["accounts"] == 6
    assert report.figures["ready in pool"] == 2
    assert report.figures["in books (working + stale)"] == 3


def test_held_accounts_are_counted_by_reason_and_hot_ones_named(tmp_path: Path) -> None:
    report = build_report(_warehouse(tmp_path / "w.duckdb"), AS_OF)
    held = {s.title: s for s in report.sections}["Held in the pool"]
    assert sorted(held.table.select("exclusion_reason", "accounts", "hot_accounts").rows()) == [
        ("lower_rank", 1, 0),
        ("no_capacity", 1, 1),
    ]
    assert held.note.startswith("1 hot accounts wait in the pool")


def test_runway_and_cohort_numbers(tmp_path: Path) -> None:
    report = build_report(_warehouse(tmp_path / "w.duckdb"), AS_OF)
    runway = {s.title: s for s in report.sections}["Supply runway"].table
    smb = runway.filter(runway["segment_key"] == "smb").row(0, named=True)
    # 2 ready smb accounts, r1 can take min(9 open, 5 per run) = 5 per run.
    assert (smb["ready_accounts"], smb["slots_per_run"]) == (2, 5)
    assert smb["runs_of_supply"] == pytest.approx(0.4)
    enterprise = runway.filter(runway["segment_key"] == "enterprise").row(0, named=True)
    assert enterprise["slots_per_run"] == 4  # the ineligible rep's slots do not count
    cohorts = {s.title: s for s in report.sections}["Distribution cohorts"].table
    assert cohorts.row(0, named=True)["touched_since"] == 1


def test_missing_mart_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(LookupError, match="accounts"):
        build_report(path, AS_OF)


def test_gini_extremes() -> None:
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)
    assert gini([]) == 0.0


@given(st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=60))
def test_gini_is_bounded_and_scale_free(values: list[int]) -> None:
    g = gini(values)
    assert 0.0 <= g <= 1.0 + 1e-9
    assert gini([v * 3 for v in values]) == pytest.approx(g)


def test_dbt_outputs_get_row_counts_tables_only(tmp_path: Path) -> None:
    from orchestration.dbt_assets import count_rows

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create table marts.t as select * from range(7)")
        con.execute("create table marts.e (x int)")
        con.execute("create view marts.v as select * from marts.t")
    relations = ["marts.t", "marts.e", "marts.v"]
    assert count_rows(str(path), relations) == {"marts.t": 7, "marts.e": 0}
    assert count_rows(str(path), []) == {}
