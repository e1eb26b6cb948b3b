"""Running dbt from Dagster: the CLI resource and what a step does around an invocation."""

import functools
import importlib.metadata
import logging
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.dbt_parse import (
    DBT_IN_WAREHOUSE_DIR,
    DBT_PROJECT_DIR,
    dbt_project,
    dbt_run_env,
)
from policy.paths import temporary_env

log = logging.getLogger(__name__)


@contextmanager
def dbt_environment(warehouse: str, policy_env: Mapping[str, str]) -> Iterator[None]:
    """The environment of one dbt subprocess (dagster-dbt passes os.environ on): the warehouse
    the profile opens (BOOKS_WAREHOUSE, made relative by `dbt_in_warehouse_dir`), the dbt to run
    and the policy (`PolicyResource.dbt_env`); restored afterwards."""
    with temporary_env({**dbt_run_env(warehouse), **policy_env}):
        yield


def stop_dbt(invocation: Any) -> None:
    """End a dbt subprocess the step no longer reads (the step failed or was cancelled), so
    it does not keep building and holding the DuckDB file after its run is over."""
    process = invocation.process
    if process.poll() is None:
        log.warning("stopping dbt (pid %s): its Dagster step ended first", process.pid)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def failed_nodes(invocation: Any) -> list[str]:
    """'<node>: <message>' for every dbt node that errored or whose test failed."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except (OSError, KeyError, ValueError):
        return []
    return [
        f"{r['unique_id']} ({r['status']}): {(r.get('message') or '').strip()[:300]}"
        for r in results
        if r.get("status") in ("error", "fail")
    ]


# The dagster-dbt release whose private methods `BooksDbtCliResource` overrides. An upgrade
# fails tests/orchestration/test_dbt_cli.py until the overrides are checked against the new
# `DbtCliResource.cli` and this pin moves.
DAGSTER_DBT_PINNED = "0.29.27"


class BooksDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without its per-invocation start-up cost (4-9 s).

    Before each command dagster-dbt runs `dbt --version` in a subprocess (dbt asks PyPI for
    the latest release there) and builds a dbt adapter in-process; the adapter only serves
    `fetch_row_counts()` / column metadata, which cannot read DuckDB while the dbt subprocess
    holds the file (row counts are read after dbt ends instead). The version comes from the
    installed dbt-core package, and no adapter is made.

    These are private methods: dagster-dbt has no public setting for either, so they are
    pinned to `DAGSTER_DBT_PINNED` by a test instead.
    """

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource for the product's dbt project; dbt runs through
    `dbt_in_warehouse_dir`, so every warehouse file of one name shares one parse."""
    return BooksDbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=str(DBT_IN_WAREHOUSE_DIR),
    )
