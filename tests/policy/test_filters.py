"""The safe filter language: hostile input is rejected at load; literals are always quoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policy import PolicyError, load_policy
from policy.cron import validate_cron
from policy.filters import ACCOUNT_FIELDS, Condition, default_column_map, snake_case, to_sql

DEFAULT = Path(__file__).resolve().parents[2] / "books.yml"


@pytest.fixture()
def accounts() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "create table accounts (name varchar, industry varchar, number_of_employees bigint, "
        "annual_revenue double, billing_country varchar, rest_until_c date, is_deleted boolean)"
    )
    con.execute(
        "insert into accounts values "
        "('Acme', 'Software', 5000, 2e7, 'Germany', date '2025-02-01', false), "
        "('O''Brien & Co', 'Retail', 40, null, 'Ireland', null, false), "
        "('Beta', null, 150, 5e6, 'United States', date '2024-12-01', true)"
    )
    return con


def names(con: duckdb.DuckDBPyConnection, conditions: list[dict[str, Any]]) -> list[str]:
    sql = f"select name from accounts where {to_sql(conditions)} order by name"
    return [row[0] for row in con.execute(sql).fetchall()]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], ["Acme", "Beta", "O'Brien & Co"]),
        ([{"field": "NumberOfEmployees", "op": ">=", "value": 150}], ["Acme", "Beta"]),
        ([{"field": "NumberOfEmployees", "op": "<", "value": 150}], ["O'Brien & Co"]),
        (
            [{"field": "Industry", "op": "in", "value": ["Software", "Retail"]}],
            ["Acme", "O'Brien & Co"],
        ),
        ([{"field": "Industry", "op": "not_in", "value": ["Software"]}], ["O'Brien & Co"]),
        ([{"field": "Industry", "op": "is_null"}], ["Beta"]),
        (
            [
                {"field": "AnnualRevenue", "op": "is_not_null"},
                {"field": "AnnualRevenue", "op": ">", "value": 1.5e7},
            ],
            ["Acme"],
        ),
        ([{"field": "Name", "op": "contains", "value": "'Brien"}], ["O'Brien & Co"]),
        ([{"field": "Name", "op": "=", "value": "O'Brien & Co"}], ["O'Brien & Co"]),
        ([{"field": "BillingCountry", "op": "!=", "value": "Germany"}], ["Beta", "O'Brien & Co"]),
        ([{"field": "Rest_Until__c", "op": "<", "value": "2025-01-06"}], ["Beta"]),
        ([{"field": "IsDeleted", "op": "=", "value": True}], ["Beta"]),
    ],
)
def test_rendered_sql_selects_the_right_rows(
    accounts: duckdb.DuckDBPyConnection, conditions: list[dict[str, Any]], expected: list[str]
) -> None:
    assert names(accounts, conditions) == expected


def test_function_call_value_is_only_a_string(accounts: duckdb.DuckDBPyConnection) -> None:
    hostile = "read_csv('/etc/passwd')"
    sql = to_sql([{"field": "Industry", "op": "=", "value": hostile}])
    assert sql == "(industry = 'read_csv(''/etc/passwd'')')"
    assert names(accounts, [{"field": "Industry", "op": "=", "value": hostile}]) == []


def test_quote_breakout_does_not_widen_the_filter(accounts: duckdb.DuckDBPyConnection) -> None:
    breakout = "x' or '1'='1"
    assert names(accounts, [{"field": "Industry", "op": "=", "value": breakout}]) == []
    stacked = "x'; copy accounts to '/tmp/leak.csv'; --"
    assert names(accounts, [{"field": "Name", "op": "contains", "value": stacked}]) == []


_ROUND_TRIP = duckdb.connect()


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, exclude_characters="\\"), max_size=40))
def test_any_string_round_trips_as_a_literal(text: str) -> None:
    con = _ROUND_TRIP
    con.execute("create or replace table accounts (name varchar)")
    con.execute("insert into accounts values (?), ('other')", [text + "!"])
    sql = to_sql([{"field": "Name", "op": "=", "value": text + "!"}])
    assert con.execute(f"select count(*) from accounts where {sql}").fetchone() == (1,)


HOSTILE = [
    ({"field": "x); COPY accounts TO '/tmp/x'", "op": "=", "value": 1}, "not an Account field"),
    ({"field": "Name", "op": "; drop table accounts", "value": "a"}, "Input should be '='"),
    ({"field": "Name", "op": "like", "value": "%a%"}, "Input should be '='"),
    ({"field": "NumberOfEmployees", "op": ">=", "value": "1; select 1"}, "must be an integer"),
    ({"field": "NumberOfEmployees", "op": "contains", "value": 1}, "allowed ops"),
    ({"field": "Name", "op": "<", "value": "m"}, "allowed ops"),
    ({"field": "Name", "op": "=", "value": {"sql": "getenv('HOME')"}}, "Input should be"),
    ({"field": "Name", "op": "=", "value": "a\\' or 1=1 --"}, "backslashes"),
    ({"field": "Name", "op": "=", "value": "line\nbreak"}, "control characters"),
    ({"field": "AnnualRevenue", "op": ">", "value": float("nan")}, "finite"),
    ({"field": "Type", "op": "=", "value": "Customer' or 1=1"}, "must be one of"),
    ({"field": "ParentId", "op": "=", "value": "001' union select"}, "Salesforce id"),
    ({"field": "Rest_Until__c", "op": "<", "value": "today()"}, "YYYY-MM-DD"),
    ({"field": "Name", "op": "is_null", "value": "x"}, "takes no value"),
    ({"field": "Name", "op": "in", "value": []}, "non-empty list"),
    ({"field": "Name", "op": "=", "value": "a", "sql": "1=1"}, "Extra inputs"),
]


@pytest.mark.parametrize(("condition", "rule"), HOSTILE, ids=[str(h[0]) for h in HOSTILE])
def test_hostile_condition_rejected_naming_the_rule(condition: dict[str, Any], rule: str) -> None:
    with pytest.raises(ValidationError, match=rule.replace("(", r"\(").replace("?", r"\?")):
        to_sql([condition])


def test_hostile_filter_in_policy_file_is_rejected_at_load(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT.read_text())
    data["segments"][0]["filter"] = [
        {"field": "NumberOfEmployees", "op": ">= 0 or 1=1; --", "value": 1}
    ]
    path = tmp_path / "hostile.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match=r"segments\[enterprise\]\.filter\[0\]\.op: Input should"):
        load_policy(path)


def test_hostile_column_map_rejected() -> None:
    condition = [{"field": "Name", "op": "=", "value": "a"}]
    with pytest.raises(ValueError, match="not a plain identifier"):
        to_sql(condition, {"Name": "name; drop table accounts"})
    with pytest.raises(ValueError, match="no column mapped"):
        to_sql(condition, {"Industry": "industry"})


def test_condition_models_are_revalidated() -> None:
    forged = Condition.model_construct(field="Name) or (1=1", op="=", value="a")
    with pytest.raises(ValidationError, match="not an Account field"):
        to_sql([forged])


def test_date_objects_from_yaml_become_iso_text() -> None:
    condition = yaml.safe_load("{field: Rest_Until__c, op: '>=', value: 2025-01-06}")
    assert to_sql([condition]) == "(rest_until_c >= date '2025-01-06')"


def test_snake_case_matches_dlt_naming() -> None:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    dlt_names = NamingConvention()
    for field in ACCOUNT_FIELDS:
        assert snake_case(field) == dlt_names.normalize_identifier(field), field
    assert default_column_map()["Book_Status__c"] == "book_status_c"


@pytest.mark.parametrize(
    "expression", ["0 6 * * 1", "*/15 * * * *", "0 5 1,15 * MON-FRI", "0-30/10 9-17 * JAN-MAR 7"]
)
def test_valid_cron(expression: str) -> None:
    assert validate_cron(expression) == expression


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 6 * *", "5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("0 24 * * *", "hour: 24 is outside 0-23"),
        ("0 0 0 * *", "day of month: 0 is outside 1-31"),
        ("0 0 1 13 *", "month: 13 is outside 1-12"),
        ("0 0 * * 8", "day of week: 8 is outside 0-7"),
        ("0 0 * * FRI-MON", "runs backwards"),
        ("*/0 * * * *", "step"),
        ("0 0 * * ;", "not a number"),
        ("0,,5 * * * *", "empty item"),
    ],
)
def test_invalid_cron(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_cron(expression)
