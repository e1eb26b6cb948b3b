"""Planning: deterministic change keys, the write allowlist, blast-radius guard, ledger storage."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_crm.db import make_id
from local_crm.schema import WRITABLE_ACCOUNT_FIELDS
from reverse_etl import ledger
from reverse_etl.guards import GuardContext
from reverse_etl.plan import (
    PlanError,
    build_plan,
    change_key,
    load_sync_rows,
    snake,
    sync_rows_from_wide,
)
from reverse_etl.policy import WritePolicy

ACC = [make_id("001", i) for i in range(1, 101)]
REPS = [make_id("005", i) for i in range(1, 11)]
POOL = make_id("005", 99)
CLOCK = lambda: dt.datetime(2025, 3, 3, 6, 0, tzinfo=dt.UTC)  # noqa: E731


def long_rows(
    items: list[tuple[str, str, str | None, str | None]], sobject: str = "Account"
) -> pl.DataFrame:
    return pl.DataFrame(
        [(sobject, *item) for item in items],
        schema={"sobject": pl.Utf8, "record_id": pl.Utf8, "field": pl.Utf8,
                "before_value": pl.Utf8, "after_value": pl.Utf8},
        orient="row",
    )  # fmt: skip


def test_change_key_ignores_field_order_and_depends_on_run_and_values() -> None:
    a = change_key("r1", "Account", ACC[0], {"OwnerId": POOL, "Book_Status__c": "resting"})
    b = change_key("r1", "Account", ACC[0], {"Book_Status__c": "resting", "OwnerId": POOL})
    assert a == b
    assert a != change_key("r2", "Account", ACC[0], {"OwnerId": POOL, "Book_Status__c": "resting"})
    assert a != change_key("r1", "Account", ACC[1], {"OwnerId": POOL, "Book_Status__c": "resting"})
    assert a != change_key("r1", "Account", ACC[0], {"OwnerId": POOL, "Book_Status__c": "review"})
    assert change_key("r1", "Account", ACC[0], {"OwnerId": POOL}) != change_key(
        "r1", "Lead", ACC[0], {"OwnerId": POOL}
    )


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(6))))
def test_plan_is_independent_of_row_order(order: list[int]) -> None:
    items = [
        (ACC[0], "OwnerId", REPS[0], POOL),
        (ACC[0], "Book_Status__c", "stale", "resting"),
        (ACC[0], "Rest_Until__c", None, "2025-05-01"),
        (ACC[1], "OwnerId", POOL, REPS[1]),
        (ACC[1], "Book_Status__c", "ready", "working"),
        (ACC[2], "Last_Touch_Date__c", "2025-01-01", "2025-02-01"),
    ]
    base = build_plan(long_rows(items), "run-1")
    shuffled = build_plan(long_rows([items[i] for i in order]), "run-1")
    assert shuffled.changes == base.changes
    assert [c.record_id for c in base.changes] == ACC[:3]
    assert base.changes[0].fields == ("Book_Status__c", "OwnerId", "Rest_Until__c")


def test_field_outside_allowlist_is_refused_naming_row_and_field() -> None:
    with pytest.raises(PlanError, match=rf"{ACC[3]}.*'Name'.*allowlist"):
        build_plan(long_rows([(ACC[3], "Name", "Acme", "Evil Corp")]), "run-1")


def test_duplicate_field_and_malformed_id_are_refused() -> None:
    with pytest.raises(PlanError, match="twice"):
        build_plan(
            long_rows([(ACC[0], "OwnerId", REPS[0], POOL), (ACC[0], "OwnerId", REPS[0], REPS[1])]),
            "run-1",
        )
    with pytest.raises(PlanError, match="malformed Account id"):
        build_plan(long_rows([("001abc", "OwnerId", REPS[0], POOL)]), "run-1")


def test_rows_that_do_not_change_anything_are_dropped() -> None:
    plan = build_plan(long_rows([(ACC[0], "Book_Status__c", "ready", "ready")]), "run-1")
    assert plan.changes == ()


def test_wide_sync_model_unpivots_with_snake_names() -> None:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    for name in WRITABLE_ACCOUNT_FIELDS:
        assert snake(name) == naming.normalize_identifier(name)
    wide = pl.DataFrame(
        {
            "account_id": [ACC[0], ACC[1]],
            "owner_id": [POOL, REPS[1]],
            "before_owner_id": [REPS[0], REPS[1]],
            "rest_until_c": [dt.date(2025, 5, 1), None],
            "before_rest_until_c": [None, None],
        }
    )
    rows = sync_rows_from_wide(wide).sort("record_id", "field")
    assert rows.rows() == [
        ("Account", ACC[0], "OwnerId", REPS[0], POOL),
        ("Account", ACC[0], "Rest_Until__c", None, "2025-05-01"),
    ]


def test_load_sync_rows_names_missing_model(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "wh.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(PlanError, match="sync_salesforce__accounts"):
        load_sync_rows(path)


def _moves(n: int, owner_books: dict[str, int]) -> tuple[pl.DataFrame, GuardContext]:
    items = []
    for i in range(n):
        rep = REPS[i % len(REPS)]
        items.append((ACC[i], "OwnerId", rep, POOL))
    ctx = GuardContext(frozenset({POOL}), {**owner_books, POOL: 500})
    return long_rows(items), ctx


def test_blast_radius_blocks_60_percent_of_owned_accounts() -> None:
    rows, ctx = _moves(60, {rep: 10 for rep in REPS})  # 100 owned, 60 move
    plan = build_plan(rows, "run-1", context=ctx)
    assert plan.moves == 60 and plan.owned_accounts == 100
    assert plan.is_blocked
    assert any("max_move_share_of_owned" in r for r in plan.blocked_reasons)
    # Every book loses 6 of 10 too: held as well (an override releases both at once).
    assert not any("max_share_of_one_book" in r for r in plan.blocked_reasons)
    assert len(plan.held) == 60


def test_blast_radius_allows_a_normal_retrieval() -> None:
    rows, ctx = _moves(20, {rep: 10 for rep in REPS})  # 20% of owned, 2 of 10 per book
    plan = build_plan(rows, "run-1", context=ctx)
    assert not plan.is_blocked, plan.blocked_reasons
    assert plan.held == ()


def test_blast_radius_median_and_one_book_rules() -> None:
    rows, ctx = _moves(20, {rep: 100 for rep in REPS})  # 2% of owned
    recent = GuardContext(ctx.pool_owner_ids, ctx.owner_counts, (5, 6, 4, 5))
    plan = build_plan(rows, "run-1", context=recent)
    assert [r for r in plan.blocked_reasons if "median 5" in r]
    items = [(ACC[i], "OwnerId", REPS[0], POOL) for i in range(6)]
    ctx2 = GuardContext(frozenset({POOL}), {REPS[0]: 10, **{r: 100 for r in REPS[1:]}})
    plan2 = build_plan(long_rows(items), "run-1", context=ctx2)
    # One book over its share: not blocked whole, that owner's moves are held.
    assert plan2.blocked_reasons == ()
    assert {h.owner_id for h in plan2.held} == {REPS[0]} and len(plan2.held) == 6
    assert f"6 of the 10 accounts of owner {REPS[0]}" in plan2.held[0].reason


def test_a_departed_owners_whole_book_is_not_held() -> None:
    """A rep who left (inactive user) releases their whole book: the per-book guard, meant to
    catch a rule emptying a working rep's book, lets it through; a working rep's is still held."""
    items = [(ACC[i], "OwnerId", REPS[i % 2], POOL) for i in range(12)]
    books = {REPS[0]: 6, REPS[1]: 6, **{r: 100 for r in REPS[2:]}}
    context = GuardContext(frozenset({POOL}), books, departed_owner_ids=frozenset({REPS[0]}))
    plan = build_plan(long_rows(items), "run-1", context=context)
    assert plan.blocked_reasons == ()
    assert {h.owner_id for h in plan.held} == {REPS[1]} and len(plan.held) == 6


def test_policy_reads_books_yml_guards() -> None:
    policy = WritePolicy.from_policy(
        {"guards": {"max_move_share_of_owned": 0.1, "bulk_threshold": 50},
         "crm": {"pool_users": ["pool-1@books.local"]}}
    )  # fmt: skip
    assert policy.max_move_share_of_owned == 0.1
    assert policy.bulk_threshold == 50
    assert policy.pool_users == ("pool-1@books.local",)
    with pytest.raises(ValueError, match="api_budget_share"):
        WritePolicy(api_budget_share=1.5)


def test_store_plan_is_idempotent_and_supersedes_older_runs(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "wh.duckdb"
    items = [(ACC[0], "OwnerId", REPS[0], POOL), (ACC[1], "Book_Status__c", "ready", "working")]
    plan = build_plan(long_rows(items), "run-1")
    ledger.store_plan(path, plan, CLOCK)
    ledger.store_plan(path, plan, CLOCK)
    assert ledger.counts(path, "run-1") == {"planned": 2}
    stored = ledger.rows(path, ("planned",), "run-1")
    assert [json.dumps(r.after) for r in stored] == [json.dumps(c.after) for c in plan.changes]
    plan2 = build_plan(long_rows(items[:1]), "run-2")
    ledger.store_plan(path, plan2, CLOCK)
    assert ledger.counts(path, "run-1") == {"superseded": 2}
    assert ledger.counts(path, "run-2") == {"planned": 1}
    with duckdb.connect(str(path)) as con:
        assert con.execute("select count(*) from ops.sync_log").fetchall() == [(0,)]
        assert con.execute(
            "select run_id, status from ops.write_plans order by planned_seq"
        ).fetchall() == [("run-1", "planned"), ("run-2", "planned")]
