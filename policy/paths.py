"""Where the policy file, the local CRM, the warehouse and the landing folder live.

The one place that resolves paths: environment variables first (BOOKS_POLICY, BOOKS_CRM_DB,
BOOKS_WAREHOUSE, BOOKS_LANDING, DAGSTER_HOME), then defaults relative to the repo root.
Everything downstream receives absolute paths. Read at call time, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "BOOKS_HOME"
ENV_POLICY = "BOOKS_POLICY"
ENV_CRM_DB = "BOOKS_CRM_DB"
ENV_WAREHOUSE = "BOOKS_WAREHOUSE"
ENV_LANDING = "BOOKS_LANDING"
ENV_DAGSTER_HOME = "DAGSTER_HOME"


def repo_root(env: Mapping[str, str] | None = None) -> Path:
    """BOOKS_HOME if set, else the checkout this package sits in (editable install), else cwd."""
    env = os.environ if env is None else env
    if env.get(ENV_HOME):
        return Path(env[ENV_HOME]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd().resolve()


@dataclass(frozen=True)
class BooksPaths:
    root: Path
    policy: Path
    crm_db: Path
    warehouse: Path
    landing: Path
    dagster_home: Path

    def as_env(self) -> dict[str, str]:
        """Environment variables that make subprocesses (dbt, dagster) see the same paths."""
        return {
            ENV_HOME: str(self.root),
            ENV_POLICY: str(self.policy),
            ENV_CRM_DB: str(self.crm_db),
            ENV_WAREHOUSE: str(self.warehouse),
            ENV_LANDING: str(self.landing),
            ENV_DAGSTER_HOME: str(self.dagster_home),
        }


def resolve_paths(
    env: Mapping[str, str] | None = None, *, policy: str | Path | None = None
) -> BooksPaths:
    """Resolve every path to an absolute one; `policy` (e.g. --policy) beats BOOKS_POLICY.

    Relative paths given in environment variables or arguments are taken from the current
    directory (what a user typing them expects); defaults are relative to the repo root.
    """
    env = os.environ if env is None else env
    root = repo_root(env)

    def pick(value: str | Path | None, default: str) -> Path:
        if value:
            return Path(value).expanduser().resolve()
        return (root / default).resolve()

    return BooksPaths(
        root=root,
        policy=pick(policy or env.get(ENV_POLICY), "books.yml"),
        crm_db=pick(env.get(ENV_CRM_DB), "data/local_crm.sqlite"),
        warehouse=pick(env.get(ENV_WAREHOUSE), "data/warehouse.duckdb"),
        landing=pick(env.get(ENV_LANDING), "data/landing"),
        dagster_home=pick(env.get(ENV_DAGSTER_HOME), ".dagster_home"),
    )


@contextmanager
def temporary_env(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ (subprocesses such as dbt inherit it) for the block, then the
    environment as it was."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
