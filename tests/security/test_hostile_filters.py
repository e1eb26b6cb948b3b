"""Hostile segment filters and fit rules against `policy.load_policy`.

Anything that is not a `{field, op, value}` over an Account field with a typed literal is
rejected at load with an error naming the rule; text literals that look like SQL are quoted by
dbt's renderer (the SQL that actually runs), so running them in DuckDB reads no file, copies
nothing and loads nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from policy import PolicyError, load_policy, to_dbt_vars
from tests.dbt.dbt_helpers import render_policy_filters

ROOT = Path(__file__).resolve().parents[2]

HOSTILE_CONDITIONS: list[dict[str, Any]] = [
    {"field": "NumberOfEmployees) or (1=1", "op": ">=", "value": 1},
    {"field": "read_csv('/etc/passwd')", "op": "=", "value": "x"},
    {"field": "Name", "op": "= 'x' or 1=1 --", "value": "x"},
    {"field": "Name", "op": "; COPY (select 1) TO '/tmp/pwn.csv'", "value": "x"},
    {"field": "Name", "op": "INSTALL httpfs", "value": "x"},
    {"field": "NumberOfEmployees", "op": ">=", "value": "1; ATTACH '/tmp/evil.duckdb'"},
    {"field": "AnnualRevenue", "op": ">", "value": "getenv('HOME')"},
    {"field": "OwnerId", "op": "=", "value": "005' union select * from read_parquet('x')"},
    {"field": "Name", "op": "=", "value": "x\\'; load httpfs; --"},  # backslash escapes
    {"field": "Name", "op": "=", "value": "x\n; copy t to '/tmp/pwn'"},  # control chars
    {"field": "Name", "op": "=", "value": "x", "sql": "read_csv_auto('/etc/passwd')"},
    {"field": "Name", "op": "in", "value": [{"raw": "read_text('/etc/passwd')"}]},
    {"field": "Rest_Until__c", "op": "<", "value": "current_date - interval 1 day"},
]


def _write_policy(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((ROOT / "books.yml").read_text())
    mutate(data)
    path = tmp_path / "books.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("condition", HOSTILE_CONDITIONS, ids=range(len(HOSTILE_CONDITIONS)))
def test_hostile_fit_rule_is_rejected_naming_the_rule(tmp_path: Path, condition: dict) -> None:
    def mutate(data: dict) -> None:
        data["fit"]["rules"].append({"name": "evil_rule", "points": 5, **condition})

    with pytest.raises(PolicyError) as info:
        load_policy(_write_policy(tmp_path, mutate))
    assert "fit.rules[evil_rule]" in str(info.value), str(info.value)


@pytest.mark.parametrize("condition", HOSTILE_CONDITIONS, ids=range(len(HOSTILE_CONDITIONS)))
def test_hostile_segment_filter_is_rejected_naming_the_segment(
    tmp_path: Path, condition: dict
) -> None:
    def mutate(data: dict) -> None:
        data["segments"][0]["filter"] = [condition]

    with pytest.raises(PolicyError) as info:
        load_policy(_write_policy(tmp_path, mutate))
    key = yaml.safe_load((ROOT / "books.yml").read_text())["segments"][0]["key"]
    assert f"segments[{key}]" in str(info.value), str(info.value)


SQL_LOOKING_TEXT = [
    "x' or '1'='1",
    "'); COPY (select 42) TO '{pwn}'; --",
    "' || (select content from read_text('/etc/passwd')) || '",
    "'; ATTACH '{pwn}' AS evil; --",
    "'; INSTALL httpfs; LOAD httpfs; --",
]


@pytest.mark.slow
def test_sql_looking_text_stays_a_harmless_literal(tmp_path: Path) -> None:
    """Through the production path: a validated policy file, `to_dbt_vars`, and the SQL dbt
    renders (macros/policy_filter.sql) for segment filters and fit rules, run in DuckDB."""
    pwn = tmp_path / "pwn.out"
    values = [text.format(pwn=pwn) for text in SQL_LOOKING_TEXT]

    def mutate(data: dict) -> None:
        data["segments"][0]["filter"] = [{"field": "Name", "op": "=", "value": v} for v in values]
        data["fit"]["rules"] += [
            {"name": f"hostile_{i}", "field": "Name", "op": "contains", "value": v, "points": 0}
            for i, v in enumerate(values)
        ]

    policy = load_policy(_write_policy(tmp_path, mutate))
    rendered = render_policy_filters(to_dbt_vars(policy, "2025-01-06", "t"), tmp_path / "dbt")
    conditions = [rendered["segments"][0]["condition"]] + [
        rule["condition"] for rule in rendered["fit_rules"] if rule["name"].startswith("hostile_")
    ]
    assert len(conditions) == 1 + len(values)
    with duckdb.connect() as con:
        con.execute("create table account as select 'Acme' as account_name, 10 as employee_count")
        for condition in conditions:
            matched = con.execute(f"select count(*) from account where {condition}").fetchone()
            assert matched == (0,), condition
        extensions = con.execute(
            "select count(*) from duckdb_extensions() where extension_name = 'httpfs' and loaded"
        ).fetchone()[0]
        databases = con.execute(
            "select count(*) from duckdb_databases() where not internal"
        ).fetchone()[0]
    assert extensions == 0 and databases == 1
    assert not pwn.exists()
