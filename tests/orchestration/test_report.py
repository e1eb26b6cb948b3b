"""The HTML run report, built from a tiny hand-made warehouse."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestration.report_html import build_report, write_report
from orchestration.report_sections_state import gini

AS_OF = date(2025, 6, 2)


def _warehouse(path: Path, *, with_decisions: bool = True) -> Path:
    """Six accounts; this run (run1) distributed 001c to r1 and retrieved 001g from r3, whose
    book it emptied; r2's retrieve of 001d was held by a guard."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create schema marts; create schema intermediate; create schema decisions; "
            "create schema ops"
        )
        con.execute(
            """
            create table marts.accounts as select * from (values
                ('001a', 'smb', 'ready', null, null::date, 'ready', null),
                ('001b', 'smb', 'ready', null, null::date, 'ready', null),
                ('001c', 'smb', 'working', 'r1', date '2025-06-03', 'ready', 'p0'),
                ('001d', 'enterprise', 'stale', 'r2', date '2025-01-01', 'stale', 'r2'),
                ('001e', 'enterprise', 'working', 'r2', null::date, 'working', 'r2'),
                ('001f', 'enterprise', 'converted', 'r2', null::date, 'converted', 'r2'),
                ('001g', 'enterprise', 'resting', 'p0', null::date, 'stale', 'r3')
            ) as t(account_id, segment_key, state, owner_id, last_meaningful_touch_date,
                   state_before, owner_id_before)
            """
        )
        if with_decisions:
            con.execute(
                """
                create table decisions.dec_run_decisions as select * from (values
                    ('run1', '001c', 'distribute', 'p0', 'r1', 'slot'),
                    ('run1', '001g', 'retrieve', 'r3', 'p0', 'untouched_30d'),
                    ('run1', '001d', 'retrieve', 'r2', 'p0', 'untouched_30d'),
                    ('run1', '001h', 'return', 'r2', 'p0', 'not_a_fit')
                ) as t(run_id, account_id, decision_kind, from_owner_id, to_owner_id, reason)
                """
            )
            con.execute(
                """
                create table decisions.book_decision_outcomes as select * from (values
                    ('run1', '001d', 'retrieve', 'held', null, 'share of book above 50%'),
                    ('run1', '001c', 'distribute', 'applied', null, null)
                ) as t(run_id, account_id, decision_kind, outcome, outcome_code, outcome_detail)
                """
            )
            con.execute(
                """
                create table ops.quarantine as select * from (values
                    ('contract', 'Account', 'owner_id.references_user', 'OwnerId is a User',
                     'run1'),
                    ('contract', 'Account', 'owner_id.references_user', 'OwnerId is a User',
                     'run1'),
                    ('contract', 'Contact', 'account_id.not_null', 'AccountId set', 'run0')
                ) as t(stage, object, rule, reason, run_id)
                """
            )
            con.execute(
                """
                create table marts.hoarding_flags as select * from (values
                    ('r2', 'untouched_book', null, 1200, 'most of the book untouched'),
                    ('r1', 'untouched_account', '001c', 3, 'untouched since distribution')
                ) as t(rep_id, flag_kind, account_id, flag_count, detail)
                """
            )
        con.execute(
            """
            create table intermediate.int_reps_capacity as select * from (values
                ('r1', 'Rep One', 'smb', 'fit', true, 10, 1, 9, 5),
                ('r2', 'Rep Two', 'enterprise', 'fit', true, 10, 2, 8, 4),
                ('r3', 'Rep Three', 'enterprise', 'fit', false, 10, 0, 10, 5),
                ('p0', 'Pool', null, 'fit', false, 0, 0, 0, 0)
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


SECTIONS = [
    "Books after the run",
    "Decisions by kind",
    "Decisions by rep",
    "Return reasons",
    "Held changes",
    "Held in the pool",
    "Quarantine",
    "Top hoarding flags",
    "Coverage",
    "Book balance",
    "Supply runway",
    "Distribution cohorts",
]


def test_report_has_every_section_with_a_chart(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "w.duckdb")
    out = tmp_path / "reports" / "r.html"
    report = write_report(warehouse, out, AS_OF, "run1")
    text = out.read_text()
    assert [s.title for s in report.sections] == SECTIONS
    charts = re.findall(r"<figure class='chart'[^>]*><svg", text)
    assert len(charts) == sum(s.chart_svg is not None for s in report.sections) == 8
    assert "<img" not in text and "DRY RUN" not in text
    assert report.figures["accounts"] == 7
    assert report.figures["ready in pool"] == 2
    assert report.figures["in books (working + stale)"] == 3


def test_books_after_the_run_beside_the_before_by_rep_name(tmp_path: Path) -> None:
    report = build_report(_warehouse(tmp_path / "w.duckdb"), AS_OF, "run1")
    books = {s.title: s for s in report.sections}["Books after the run"].table
    rows = {r["rep"]: (r["book_before"], r["book_after"]) for r in books.iter_rows(named=True)}
    assert rows["Rep One"] == (0, 1)  # 001c distributed
    assert rows["Rep Three"] == (1, 0)  # the run emptied this book
    assert rows["Rep Two"] == (2, 2)


def test_run_sections_name_reps_and_say_why(tmp_path: Path) -> None:
    report = build_report(_warehouse(tmp_path / "w.duckdb"), AS_OF, "run1")
    sections = {s.title: s for s in report.sections}
    by_rep = {r[0]: r[1:] for r in sections["Decisions by rep"].table.rows()}
    assert by_rep["Rep Two"] == (0, 2) and by_rep["Rep Three"] == (0, 1)
    assert sections["Return reasons"].table.rows() == [("not_a_fit", 1)]
    held = sections["Held changes"].table.row(0, named=True)
    assert (held["decision_kind"], held["outcome"], held["decisions"]) == ("retrieve", "held", 1)
    assert held["example"] == "share of book above 50%"
    assert sections["Quarantine"].table.select("object", "records").rows() == [("Account", 2)]
    flags = sections["Top hoarding flags"].table
    assert flags.row(0, named=True)["rep"] == "Rep Two"
    html_text = report.to_html()
    assert "1,200" in html_text  # thousands separators
    assert "r2" not in re.sub(r"<svg.*?</svg>", "", html_text, flags=re.S).replace("run1", "")


def test_empty_run_says_so_instead_of_empty_charts(tmp_path: Path) -> None:
    report = build_report(_warehouse(tmp_path / "w.duckdb", with_decisions=False), AS_OF, "run1")
    sections = {s.title: s for s in report.sections}
    for title in ("Decisions by kind", "Return reasons", "Held changes", "Quarantine"):
        assert sections[title].empty and sections[title].chart_svg is None, title
    assert sections["Distribution cohorts"].empty == "No distributions recorded yet."
    assert "<p class='empty'>No distributions recorded yet.</p>" in report.to_html()


def test_dry_run_is_labelled(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "w.duckdb")
    text = build_report(warehouse, AS_OF, "run1", dry_run=True).to_html()
    assert "id='dry-run'" in text and "DRY RUN" in text


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
