"""Dagster resources for the external systems: the CRM and the warehouse file.

Values arrive through Dagster config (use `EnvVar` for secrets in definitions.py); nothing here
reads the environment at import time. For the local CRM without a `base_url`, the resource
starts the local CRM server in-process for the duration of one step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from crm.salesforce import CrmSettings, SalesforceConnection, connect

log = logging.getLogger(__name__)


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
        """A logged-in connection; serves the local CRM in-process if no URL is configured."""
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
    """The DuckDB warehouse file (single writer: every writing op uses pool `duckdb_writer`)."""

    path: str = Field(description="Absolute path of the warehouse .duckdb file.")
    landing_dir: str | None = Field(
        default=None, description="Landing folder for file feeds; default: 'landing' beside it."
    )

    @property
    def warehouse_path(self) -> Path:
        return Path(self.path).resolve()

    @property
    def landing_path(self) -> Path:
        if self.landing_dir:
            return Path(self.landing_dir).resolve()
        return self.warehouse_path.parent / "landing"
