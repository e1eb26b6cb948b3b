"""The safe filter language: hostile input is rejected at load (Python validation); literals are
always quoted in the SQL dbt renders (`macros/policy_filter.sql`, the one renderer), checked here
by running that SQL in DuckDB."""

from __future__ import annotations

import tempfile
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
from policy.filters import ACCOUNT_FIELDS, Condition
from tests.dbt.dbt_helpers import policy_vars, render_policy_filters

DEFAULT = Path(__file__).resolve().parents[2] / "books.yml"


ROWS = [
    ("Acme", "Software", 5000, 2e7, "Germany", "2025-02-01"),
    ("O'Brien & Co", "Retail", 40, None, "Ireland", None),
    ("Beta", None, 150, 5e6, "United States", "2024-12-01"),
]

# (conditions, names they select); rendered by dbt in one run-operation for speed.
SELECTS: list[tuple[list[dict[str, Any]], list[str]]] = [
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
    ([{"field": "Industry", "op": "=", "value": "read_csv('/etc/passwd')"}], []),
    ([{"field": "Industry", "op": "=", "value": "x' or '1'='1"}], []),
    (
        [{"field": "Name", "op": "contains", "value": "x'; copy accounts to '/tmp/leak.csv'; --"}],
        [],
    ),
]


def _accounts() -> duckdb.DuckDBPyConnection:
    """Accounts under the staging column names the dbt renderer maps fields to."""
    con = duckdb.connect()
    con.execute(
        "create table accounts (account_name varchar, industry varchar, employee_count bigint, "
        "annual_revenue double, billing_country varchar, rest_until_date date)"
    )
    con.executemany("insert into accounts values (?, ?, ?, ?, ?, ?)", ROWS)
    return con


def _render_segments(conditions: list[list[dict[str, Any]]], work_dir: Path) -> list[str]:
    """dbt's SQL for each condition list, validated first (production renders only validated
    policies), rendered as segment filters."""
    dbt_vars = policy_vars("2025-01-06")
    dbt_vars["policy"]["segments"] = [
        {"key": f"case_{i}", "filter": [Condition.model_validate(c).model_dump() for c in conds]}
        for i, conds in enumerate(conditions)
    ]
    rendered = render_policy_filters(dbt_vars, work_dir)
    return [segment["condition"] for segment in rendered["segments"]]


@pytest.mark.slow
def test_dbt_rendered_sql_selects_the_right_rows(tmp_path: Path) -> None:
    sqls = _render_segments([conds for conds, _ in SELECTS], tmp_path)
    con = _accounts()
    for (conds, expected), sql in zip(SELECTS, sqls, strict=True):
        got = [
            row[0]
            for row in con.execute(
                f"select account_name from accounts where {sql} order by account_name"
            ).fetchall()
        ]
        assert got == expected, (conds, sql)
    assert sqls[11] == "((industry = 'read_csv(''/etc/passwd'')'))"


@pytest.mark.slow
@settings(max_examples=2, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(
                exclude_categories=("Cs", "Cc"),  # YAML (dbt --vars) cannot carry these
                max_codepoint=0xFFFF,
                exclude_characters="\\",
            ),
            max_size=40,
        ),
        min_size=25,
        max_size=25,
    )
)
def test_any_string_round_trips_as_a_literal(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as work_dir:
        sqls = _render_segments(
            [[{"field": "Name", "op": "=", "value": text + "!"}] for text in texts],
            Path(work_dir),
        )
    con = duckdb.connect()
    con.execute("create table accounts (account_name varchar)")
    for text, sql in zip(texts, sqls, strict=True):
        con.execute("delete from accounts")
        con.execute("insert into accounts values (?), ('other')", [text + "!"])
        assert con.execute(f"select count(*) from accounts where {sql}").fetchone() == (1,), sql


@pytest.mark.slow
def test_every_filterable_field_renders_in_dbt(tmp_path: Path) -> None:
    """The Python allowlist and dbt's field -> column map agree: a validated policy compiles."""
    sqls = _render_segments(
        [[{"field": field, "op": "is_null"}] for field in ACCOUNT_FIELDS], tmp_path
    )
    assert len(sqls) == len(ACCOUNT_FIELDS)
    assert all(sql.endswith(" is null))") for sql in sqls)


@pytest.mark.parametrize("field", ["IsDeleted", "LastModifiedDate"])
def test_unstaged_fields_are_not_filterable(field: str) -> None:
    with pytest.raises(ValidationError, match="not an Account field"):
        Condition.model_validate({"field": field, "op": "is_null"})


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
        Condition.model_validate(condition)


def test_hostile_filter_in_policy_file_is_rejected_at_load(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT.read_text())
    data["segments"][0]["filter"] = [
        {"field": "NumberOfEmployees", "op": ">= 0 or 1=1; --", "value": 1}
    ]
    path = tmp_path / "hostile.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match=r"segments\[enterprise\]\.filter\[0\]\.op: Input should"):
        load_policy(path)


def test_date_objects_from_yaml_become_iso_text() -> None:
    condition = yaml.safe_load("{field: Rest_Until__c, op: '>=', value: 2025-01-06}")
    assert Condition.model_validate(condition).value == "2025-01-06"


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
