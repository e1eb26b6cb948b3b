"""The engine choice, read in one place: the policy's `warehouse:` section says duckdb or spark;
for spark, the connection comes from the environment variables it names (like the CRM's
credentials). dbt reads the same settings through its `spark` profile target."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from policy import Policy

# What dbt_project/profiles.yml's `spark` target reads, whatever names the policy chose.
PROFILE_MASTER_ENV = "BOOKS_SPARK_MASTER"
PROFILE_WAREHOUSE_DIR_ENV = "BOOKS_SPARK_WAREHOUSE"


class EngineError(ValueError):
    """The chosen engine cannot be reached: says which environment variable to set."""


@dataclass(frozen=True)
class SparkSettings:
    master: str
    warehouse_dir: Path

    def dbt_env(self) -> dict[str, str]:
        """The environment the dbt profile's `spark` target reads."""
        return {
            PROFILE_MASTER_ENV: self.master,
            PROFILE_WAREHOUSE_DIR_ENV: str(self.warehouse_dir),
        }


def dbt_target(policy: Policy) -> str:
    """The dbt profile target (dbt_project/profiles.yml) for the policy's engine."""
    return policy.warehouse.engine


def spark_settings(policy: Policy, environ: Mapping[str, str] | None = None) -> SparkSettings:
    """The Spark connection from the environment variables the policy names."""
    env = os.environ if environ is None else environ
    names = policy.warehouse.spark
    missing = [n for n in (names.master_env, names.warehouse_dir_env) if not env.get(n)]
    if missing:
        raise EngineError(
            "warehouse.engine is spark: set the environment variable(s) "
            + ", ".join(missing)
            + " (the master URL, e.g. spark://127.0.0.1:7077, and a directory for the tables)"
        )
    master = env[names.master_env]
    if not master.startswith(("spark://", "local")):
        raise EngineError(
            f"{names.master_env}={master!r} is not a Spark master URL (spark://host:port)"
        )
    return SparkSettings(master=master, warehouse_dir=Path(env[names.warehouse_dir_env]).resolve())


def spark_tables_dir(policy: Policy, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the models live when the engine is spark (the Python side reads the sync models
    from there); None on DuckDB, where they are in the warehouse file."""
    if policy.warehouse.engine != "spark":
        return None
    return spark_settings(policy, environ).warehouse_dir
