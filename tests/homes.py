"""A temporary product home for tests that run the real pipeline: the environment a user would
set (CRM file, warehouse, landing folder, Dagster instance), all under one folder."""

from __future__ import annotations

from pathlib import Path


def home_env(home: Path) -> dict[str, str]:
    """The BOOKS_* paths and DAGSTER_HOME under `home` (BOOKS_POLICY left to the caller)."""
    return {
        "BOOKS_CRM_DB": str(home / "crm.sqlite"),
        "BOOKS_WAREHOUSE": str(home / "warehouse.duckdb"),
        "BOOKS_LANDING": str(home / "landing"),
        "DAGSTER_HOME": str(home / "dagster"),
    }
