"""`BooksDbtCliResource` overrides two private methods of dagster-dbt's `DbtCliResource`
(dagster-dbt offers no public switch for either): they are pinned to one dagster-dbt release,
so an upgrade fails here, naming what to re-check, instead of silently changing behaviour."""

from __future__ import annotations

import functools
import inspect
import subprocess

import dagster_dbt
from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.dbt_cli import DAGSTER_DBT_PINNED, BooksDbtCliResource, dbt_resource
from orchestration.dbt_parse import dbt_executable


def test_the_overrides_are_those_of_the_pinned_dagster_dbt() -> None:
    assert dagster_dbt.__version__ == DAGSTER_DBT_PINNED, (
        f"dagster-dbt is {dagster_dbt.__version__}, the overrides in orchestration/dbt_cli.py "
        f"were checked against {DAGSTER_DBT_PINNED}: check that DbtCliResource.cli still gets "
        "the dbt version from `_cli_version` and the adapter from `_initialize_dbt_core_adapter` "
        "(or whether a public setting replaces them), then move DAGSTER_DBT_PINNED"
    )
    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli
    assert "self._initialize_dbt_core_adapter(args)" in cli
    parent_version = inspect.getattr_static(DbtCliResource, "_cli_version")
    assert isinstance(parent_version, functools.cached_property)
    assert list(inspect.signature(DbtCliResource._initialize_dbt_core_adapter).parameters) == [
        "self",
        "args",
    ]


def test_the_resource_reports_the_version_dbt_itself_reports() -> None:
    resource = dbt_resource()
    assert isinstance(resource, BooksDbtCliResource)
    shown = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    installed = shown.split("installed:")[1].split()[0]
    assert resource._cli_version == version.parse(installed)
