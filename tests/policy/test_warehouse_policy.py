"""The policy's `warehouse:` section: DuckDB unless it says spark; a bad engine or a secret in
place of a variable name fails naming the field; the engine never changes the policy version
(decisions must not depend on it); Spark settings come from the variables it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy import PolicyError, load_policy, policy_version, to_dbt_vars
from tests.policy.test_policy_model import DEFAULT, default_data, write
from warehouse.engine import EngineError, dbt_target, spark_settings


def test_default_engine_is_duckdb() -> None:
    assert dbt_target(load_policy(DEFAULT)) == "duckdb"


@pytest.mark.parametrize(
    ("section", "field", "says"),
    [
        ({"engine": "snowflake"}, "warehouse.engine", "duckdb"),
        ({"spark": {"master_env": "spark://10.0.0.1:7077"}}, "warehouse.spark.master_env", "name"),
        ({"engine": "spark", "cluster": "big"}, "warehouse.cluster", ""),
    ],
)
def test_bad_warehouse_section_names_the_field(
    tmp_path: Path, section: dict, field: str, says: str
) -> None:
    data = default_data()
    data["warehouse"] = section
    with pytest.raises(PolicyError) as error:
        load_policy(write(tmp_path, data))
    assert field in str(error.value)
    assert says in str(error.value)


def test_engine_changes_neither_policy_version_nor_dbt_vars(tmp_path: Path) -> None:
    data = default_data()
    data["warehouse"] = {"engine": "spark", "spark": {"master_env": "MY_MASTER"}}
    spark = load_policy(write(tmp_path, data))
    duck = load_policy(DEFAULT)
    assert dbt_target(spark) == "spark"
    assert policy_version(spark) == policy_version(duck)
    assert to_dbt_vars(spark, "2025-03-31", "r") == to_dbt_vars(duck, "2025-03-31", "r")


def test_spark_settings_come_from_the_named_variables(tmp_path: Path) -> None:
    data = default_data()
    data["warehouse"] = {"engine": "spark", "spark": {"master_env": "MY_MASTER"}}
    policy = load_policy(write(tmp_path, data))
    env = {"MY_MASTER": "spark://127.0.0.1:7077", "BOOKS_SPARK_WAREHOUSE": str(tmp_path)}
    settings = spark_settings(policy, env)
    assert settings.dbt_env() == {
        "BOOKS_SPARK_MASTER": "spark://127.0.0.1:7077",
        "BOOKS_SPARK_WAREHOUSE": str(tmp_path.resolve()),
    }
    with pytest.raises(EngineError, match="MY_MASTER"):
        spark_settings(policy, {"BOOKS_SPARK_WAREHOUSE": str(tmp_path)})
    with pytest.raises(EngineError, match="not a Spark master URL"):
        spark_settings(policy, {**env, "MY_MASTER": "127.0.0.1:7077"})
