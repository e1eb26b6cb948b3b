"""Dagster resources for the external systems: the CRM and the warehouse file.

Values arrive through Dagster config (use `EnvVar` for secrets in definitions.py); nothing here
reads the environment at import time. One API per system: `crm.open()` is the only way to get a
CRM connection (a context manager, because a local CRM without a `base_url` is served in-process
for the duration of the block), and `warehouse.warehouse_path` / `warehouse.landing_path` are
the only way to find the warehouse file and the landing folder.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from dagster import ConfigurableResource, DagsterRunStatus, InitResourceContext
from pydantic import Field, PrivateAttr

from crm.salesforce import CrmSettings, SalesforceConnection, connect

log = logging.getLogger(__name__)


class CrmOpener(Protocol):
    """What assets and sensors need from the `crm` resource (tests pass fakes with `open`)."""

    def open(self) -> AbstractContextManager[SalesforceConnection]: ...

    def today(self, moment: datetime) -> date: ...


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

    def today(self, moment: datetime) -> date:
        """The as-of date of a run requested at `moment` (orchestration.cycle.crm_today)."""
        from orchestration.cycle import crm_today

        return crm_today(self.kind, self.local_db_path, moment)

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


TAG_RUN_ID = "books/run_id"  # same value as orchestration.cycle.TAG_RUN_ID (no import cycle)
_FINISHED = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE,
                       DagsterRunStatus.CANCELED})  # fmt: skip


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse file and the landing folder beside it.

    Single writer: every op that writes the file runs in pool `duckdb_writer` (one run), and
    every step of a Dagster run that uses this resource holds the warehouse lease keyed by the
    run id (across runs and processes: a schedule's run and a `books run` from a terminal).
    In-process execution takes it once for the run; a step process of the multiprocess
    executor joins or takes it for the run worker's pid and leaves it for the next step; it is
    freed when the run finishes, its run worker dies, or it expires. A run that cannot get it
    within `lease_wait_seconds` fails with one line naming the holder. An empty `path`
    resolves at run time (BOOKS_WAREHOUSE, else the repo default), never at import time.
    Run tags `books/accept_row_drop` (+ `_by`, `_reason`) are recorded here, before any check.
    """

    path: str = Field(default="", description="Warehouse .duckdb file; empty: BOOKS_WAREHOUSE.")
    landing_dir: str | None = Field(
        default=None, description="Landing folder for file feeds; default: BOOKS_LANDING."
    )
    lease_wait_seconds: float = Field(
        default=900.0, description="How long a run waits for another cycle to finish writing."
    )
    lease_ttl_seconds: float = Field(
        default=120.0, description="Lease expiry without a heartbeat (a crashed holder)."
    )
    _stack: ExitStack | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Take (or join) the run's warehouse lease; record a row-drop override from tags."""
        run = context.dagster_run
        if run is None or not context.run_id:
            return  # a sensor or a test building the resource: no run, no lease
        from warehouse.lease import acquire

        in_step_process = multiprocessing.parent_process() is not None
        instance = context.instance

        def finished(run_key: str) -> bool:
            record = instance.get_run_by_id(run_key) if instance is not None else None
            return record is not None and record.status in _FINISHED

        stack = ExitStack()
        stack.enter_context(
            acquire(
                self.warehouse_path,
                f"dagster run {context.run_id} ({run.job_name})",
                wait_seconds=self.lease_wait_seconds,
                ttl_seconds=self.lease_ttl_seconds,
                run_key=context.run_id,
                # The run worker spawned this step process; the run lives as long as it does.
                pid=multiprocessing.parent_process().pid if in_step_process else os.getpid(),
                finished=finished,
                keep=in_step_process,
            )
        )
        self._stack = stack
        try:
            self._record_row_drop_override(context.run_id, dict(run.tags))
        except Exception:
            stack.close()
            self._stack = None
            raise

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _record_row_drop_override(self, dagster_run_id: str, tags: dict[str, str]) -> None:
        from contracts.overrides import (
            TAG_ACCEPT_REASON,
            TAG_ACCEPT_ROW_DROP,
            TAG_ACCEPTED_BY,
            record_overrides,
        )

        objects = tags.get(TAG_ACCEPT_ROW_DROP, "").strip()
        if not objects:
            return
        run_id = tags.get(TAG_RUN_ID)
        if not run_id:
            raise ValueError(
                f"run tag {TAG_ACCEPT_ROW_DROP}={objects!r} needs the run tag {TAG_RUN_ID} "
                "(the books run it applies to)"
            )
        from warehouse.lease import connect_warehouse

        with connect_warehouse(self.warehouse_path) as con:
            accepted = record_overrides(
                con,
                run_id,
                objects.split(","),
                accepted_by=tags.get(TAG_ACCEPTED_BY, ""),
                reason=tags.get(TAG_ACCEPT_REASON, ""),
                requested_via=f"dagster run {dagster_run_id}",
                # An audit stamp only: no rule depends on it.
                requested_at=datetime.now(UTC),
            )
        log.warning(
            "row-count drop accepted for run %s: %s",
            run_id,
            ", ".join(f"{o.object} by {o.accepted_by}" for o in accepted),
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
