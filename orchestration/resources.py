"""Dagster resources for the external systems: the CRM and the warehouse file.

Values arrive through Dagster config (use `EnvVar` for secrets in definitions.py); nothing here
reads the environment at import time. One API per system: `crm.open()` is the only way to get a
CRM connection (a context manager, because a local CRM without a `base_url` is served in-process
for the duration of the block), and `warehouse.warehouse_path` / `warehouse.landing_path` are
the only way to find the warehouse file and the landing folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from dagster import ConfigurableResource
from pydantic import Field

from crm.salesforce import CrmSettings, SalesforceConnection, connect

log = logging.getLogger(__name__)


class CrmOpener(Protocol):
    """What assets and sensors need from the `crm` resource (tests pass fakes with `open`)."""

    def open(self) -> AbstractContextManager[SalesforceConnection]: ...


class CrmResource(ConfigurableResource):
    """Where the CRM is and how to log in (local CRM by default, or a real Salesforce org)."""

    kind: str = Field(default="local", description="'local' or 'salesforce'")
    base_url: str | None = Field(
        default=None,
        description="Org instance/My Domain URL, or a running local CRM server's URL. Empty "
        "with kind=local: the local CRM at local_db_path is served in-process.",
    )
    local_db_path: str | None = Field(default=None, description="Local CRM SQLite file.")
    client_id: str = Field(default="", description="OAuth client id (connected app).")
    client_secret: str = Field(default="", description="OAuth client secret; use EnvVar.")
    username: str | None = Field(default=None, description="Password flow only.")
    password: str | None = Field(default=None, description="Password flow only; use EnvVar.")
    api_version: str = "62.0"

    def settings(self, base_url: str | None = None) -> CrmSettings:
        """The connector settings (base_url overridable for an in-process local server)."""
        url = base_url or self.base_url
        if not url:
            raise ValueError("CrmResource.base_url is required for kind='salesforce'")
        return CrmSettings(
            kind="local" if self.kind == "local" else "salesforce",
            base_url=url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            username=self.username,
            password=self.password,
            api_version=self.api_version,
        )

    @contextmanager
    def open(self) -> Iterator[SalesforceConnection]:
        """A logged-in connection for the block; serves the local CRM in-process if no URL."""
        if self.kind not in ("local", "salesforce"):
            raise ValueError(f"CrmResource.kind must be 'local' or 'salesforce', got {self.kind!r}")
        if self.kind == "local" and not self.base_url:
            if not self.local_db_path:
                raise ValueError("CrmResource needs base_url or local_db_path for kind='local'")
            from local_crm.server import start_in_process

            server = start_in_process(Path(self.local_db_path).resolve())
            try:
                yield connect(self.settings(server.url))
            finally:
                server.stop()
            return
        yield connect(self.settings())


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse file and the landing folder beside it.

    Single writer: every op that writes the file runs in pool `duckdb_writer`. An empty `path`
    resolves at run time (BOOKS_WAREHOUSE, else the repo default), never at import time.
    """

    path: str = Field(default="", description="Warehouse .duckdb file; empty: BOOKS_WAREHOUSE.")
    landing_dir: str | None = Field(
        default=None, description="Landing folder for file feeds; default: BOOKS_LANDING."
    )

    @property
    def warehouse_path(self) -> Path:
        if self.path:
            return Path(self.path).resolve()
        from policy import resolve_paths

        return resolve_paths().warehouse

    @property
    def landing_path(self) -> Path:
        if self.landing_dir:
            return Path(self.landing_dir).resolve()
        from policy import resolve_paths

        return resolve_paths().landing
