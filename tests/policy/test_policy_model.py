"""books.yml validation: the shipped file loads; each bad file fails naming its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy import PolicyError, load_policy, policy_version, to_dbt_vars
from policy.paths import resolve_paths

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "books.yml"


def default_data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT.read_text())


def write(tmp_path: Path, data: Any, name: str = "books.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b[0].c` in nested data (creating the last key)."""
    target: Any = data
    parts = dotted.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value


def delete_path(data: dict[str, Any], dotted: str) -> None:
    target: Any = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target[part]
    del target[parts[-1]]


def test_default_file_loads_with_expected_values() -> None:
    policy = load_policy(DEFAULT)
    assert policy.lifecycle.working_window_days == 30
    assert policy.segment_keys == ["enterprise", "midmarket", "smb"]
    assert set(policy.books.roles) == {"SDR", "BDR"}
    assert policy.books.roles["SDR"].slots.fit == 75
    assert policy.fit.rules[0].name == "target_industry"
    assert policy.cadences.distribution.cron == "0 6 * * 1"


# (mutation path, new value, expected field path in message, expected allowed text)
BAD_VALUES = [
    ("lifecycle.working_window_days", 10, "lifecycle.working_window_days", "15..90"),
    ("lifecycle.working_window_days", 91, "lifecycle.working_window_days", "15..90"),
    ("lifecycle.grace_period_days", "two weeks", "lifecycle.grace_period_days", "integer"),
    ("lifecycle.rest_days.not_now", -1, "lifecycle.rest_days.not_now", "0..3650"),
    ("lifecycle.hierarchy_rule", "random", "lifecycle.hierarchy_rule", "'independent'"),
    ("crm.kind", "hubspot", "crm.kind", "'local' or 'salesforce'"),
    ("crm.pool_users", [], "crm.pool_users", "at least 1"),
    (
        "crm.salesforce.client_secret_env",
        "s3cr3t value",
        "crm.salesforce.client_secret_env",
        "environment variable name",
    ),
    ("meaningful_activity.types", ["Call", "Fax"], "meaningful_activity.types[1]", "'LinkedIn'"),
    ("priority.fit_weight", 0.7, "priority", "sum to 1"),
    ("fit.tiers.B", 80, "fit.tiers", "descending"),
    ("fit.source", "magic", "fit.source", "'rules' or 'external'"),
    ("fit.rules[0].field", "Revenue", "fit.rules[target_industry].field", "not an Account field"),
    ("fit.rules[0].value", ["Software", 5], "fit.rules[target_industry]", "must be a string"),
    ("fit.rules[1].points", 150, "fit.rules[employees_100_plus].points", "-100..100"),
    ("segments[0].filter[0].op", "contains", "segments[enterprise].filter[0]", "allowed ops"),
    ("segments[0].filter[0].value", "1000", "segments[enterprise].filter[0]", "must be an integer"),
    ("cadences.distribution.cron", "0 25 * * 1", "cadences.distribution.cron", "hour"),
    ("cadences.retrieval.cron", "@weekly", "cadences.retrieval.cron", "5 fields"),
    ("cadences.signals.interval_seconds", 5, "cadences.signals.interval_seconds", "30..86400"),
    ("books.SDR.slots.fit", 70, "books.SDR", "must equal target_size"),
    ("books.non_book_roles", ["AE", "SDR"], "books", "non_book_roles"),
    ("timing.hot_threshold", 20, "timing", "in_market_threshold"),
    ("timing.signals.funding.weight", 101, "timing.signals.funding.weight", "0..100"),
    ("guards.max_share_of_one_book", 1.5, "guards.max_share_of_one_book", ">0..1"),
    ("planning.close_rate", 0, "planning.close_rate", ">0..1"),
    ("version", 2, "version", "1"),
    ("lifecycle.working_windw_days", 30, "lifecycle.working_windw_days", "working_window_days"),
]


@pytest.mark.parametrize(
    ("dotted", "value", "field", "allowed"),
    BAD_VALUES,
    ids=[f"{b[0]}={b[1]!r}" for b in BAD_VALUES],
)
def test_bad_value_fails_naming_field_and_allowed(
    tmp_path: Path, dotted: str, value: Any, field: str, allowed: str
) -> None:
    data = default_data()
    set_path(data, dotted, value)
    path = write(tmp_path, data)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert f"{field}:" in message, message
    assert allowed in message, message


def test_segments_need_a_final_catch_all(tmp_path: Path) -> None:
    data = default_data()
    data["segments"][-1]["filter"] = [{"field": "NumberOfEmployees", "op": "<", "value": 100}]
    with pytest.raises(PolicyError, match=r"segments: .*catch-all"):
        load_policy(write(tmp_path, data))


def test_segment_after_catch_all_is_unused(tmp_path: Path) -> None:
    data = default_data()
    data["segments"].insert(0, {"key": "everyone", "filter": []})
    with pytest.raises(PolicyError, match=r"segments: .*never be used"):
        load_policy(write(tmp_path, data))


def test_duplicate_segment_key(tmp_path: Path) -> None:
    data = default_data()
    data["segments"][1]["key"] = "enterprise"
    with pytest.raises(PolicyError, match=r"segments: duplicate segment key 'enterprise'"):
        load_policy(write(tmp_path, data))


def test_missing_section_is_named(tmp_path: Path) -> None:
    data = default_data()
    delete_path(data, "planning")
    with pytest.raises(PolicyError, match=r"planning: required field is missing"):
        load_policy(write(tmp_path, data))


def test_duplicate_yaml_key_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dup.yml"
    path.write_text(DEFAULT.read_text() + "\nguards:\n  bulk_threshold: 5\n")
    with pytest.raises(PolicyError, match=r"duplicate key 'guards'"):
        load_policy(path)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("crm:\n  kind: [local\n")
    with pytest.raises(PolicyError, match=r"broken.yml: invalid YAML at line \d+"):
        load_policy(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope.yml: file not found"):
        load_policy(tmp_path / "nope.yml")


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yml"
    path.write_text("- a\n- b\n")
    with pytest.raises(PolicyError, match="mapping"):
        load_policy(path)


# --- version hash ---------------------------------------------------------------------------
def _reorder(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


def test_version_stable_under_key_order_comments_and_explicit_defaults(tmp_path: Path) -> None:
    base = policy_version(load_policy(DEFAULT))
    assert len(base) == 64 and int(base, 16) >= 0

    reordered = write(tmp_path, _reorder(default_data()), "reordered.yml")
    assert policy_version(load_policy(reordered)) == base

    commented = tmp_path / "commented.yml"
    commented.write_text("# a new comment\n" + DEFAULT.read_text().replace("\n", "  # c\n", 3))
    assert policy_version(load_policy(commented)) == base

    # Omitting a section whose values equal the defaults is the same policy.
    data = default_data()
    assert data["priority"] == {"fit_weight": 0.6, "timing_weight": 0.4}
    del data["priority"]
    assert policy_version(load_policy(write(tmp_path, data, "no_priority.yml"))) == base


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("lifecycle.working_window_days", 31),
        ("fit.rules[0].points", 29),
        ("segments[0].filter[0].value", 999),
        ("cadences.retrieval.enabled", False),
    ],
)
def test_version_changes_when_a_value_changes(tmp_path: Path, dotted: str, value: Any) -> None:
    base = policy_version(load_policy(DEFAULT))
    data = default_data()
    set_path(data, dotted, value)
    assert policy_version(load_policy(write(tmp_path, data))) != base


def test_dbt_vars_shape() -> None:
    policy = load_policy(DEFAULT)
    dbt_vars = to_dbt_vars(policy, "2025-01-06", "run-1")
    assert dbt_vars["as_of_date"] == "2025-01-06"
    assert dbt_vars["run_id"] == "run-1"
    assert dbt_vars["policy_version"] == policy_version(policy)
    assert dbt_vars["policy"]["lifecycle"]["working_window_days"] == 30
    # same shape as the file: no null placeholders for roles without a book
    assert set(dbt_vars["policy"]["books"]) == set(default_data()["books"])
    # filters travel as structured data; dbt renders them (one renderer, no pre-rendered SQL)
    assert "policy_sql" not in dbt_vars
    segments = dbt_vars["policy"]["segments"]
    assert [s["key"] for s in segments] == ["enterprise", "midmarket", "smb"]
    assert segments[0]["filter"] == [{"field": "NumberOfEmployees", "op": ">=", "value": 1000}]
    assert segments[-1]["filter"] == []
    with pytest.raises(ValueError, match="as_of_date"):
        to_dbt_vars(policy, "2025-13-01", "run-1")
    with pytest.raises(ValueError, match="run_id"):
        to_dbt_vars(policy, "2025-01-06", "")


def test_dbt_vars_are_json_and_copy_safe() -> None:
    import json

    dbt_vars = to_dbt_vars(load_policy(DEFAULT), "2025-01-06", "r")
    assert json.loads(json.dumps(dbt_vars)) == copy.deepcopy(dbt_vars)


def test_paths_env_overrides_and_defaults(tmp_path: Path) -> None:
    paths = resolve_paths({"BOOKS_WAREHOUSE": str(tmp_path / "w.duckdb")})
    assert paths.warehouse == tmp_path / "w.duckdb"
    assert paths.crm_db == REPO / "data" / "local_crm.sqlite"
    assert paths.policy == REPO / "books.yml"
    assert paths.landing.is_absolute() and paths.dagster_home == REPO / ".dagster_home"
    override = resolve_paths({"BOOKS_POLICY": "/x/env.yml"}, policy=tmp_path / "arg.yml")
    assert override.policy == tmp_path / "arg.yml"
    assert override.as_env()["BOOKS_WAREHOUSE"] == str(REPO / "data" / "warehouse.duckdb")
