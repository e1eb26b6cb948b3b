"""Checks a cycle needs to pass before it starts, each failing with one line naming what to fix.

A cycle that would fail half way (no CRM credentials, an unreachable org, a warehouse another
process holds, a landing "folder" that is a file) fails here instead, before any step runs, so
the user reads one sentence rather than a failed Dagster run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# A short look at the org: one try of at most 15 s (a cycle's own calls retry longer).
LOGIN_ATTEMPTS = 1
LOGIN_TIMEOUT_SECONDS = 15.0


class PreflightError(Exception):
    """A problem the user fixes before the cycle can run; the message says what to fix."""


def check_landing(landing: Path) -> None:
    """A missing landing folder means no files this run; a file or unreadable one is a mistake
    (the file feeds would silently load nothing)."""
    if landing.exists() and not landing.is_dir():
        raise PreflightError(
            f"the landing folder {landing} is a file, not a folder; point BOOKS_LANDING at a folder"
        )
    if landing.is_dir():
        try:
            next(landing.iterdir(), None)
        except OSError as exc:
            raise PreflightError(
                f"the landing folder {landing} cannot be read ({exc.strerror}); fix its "
                "permissions or point BOOKS_LANDING elsewhere"
            ) from None


def check_warehouse(warehouse: Path) -> None:
    """The warehouse file must be a DuckDB database no other process holds.

    Skipped while a books cycle holds the warehouse lease: the runner waits for it or names it.
    """
    import duckdb

    from warehouse.lease import read_lease

    if warehouse.exists() and warehouse.is_dir():
        raise PreflightError(
            f"the warehouse {warehouse} is a folder; point BOOKS_WAREHOUSE at a .duckdb file"
        )
    if not warehouse.exists() or read_lease(warehouse) is not None:
        return
    try:
        duckdb.connect(str(warehouse)).close()
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = re.search(r"\(PID (\d+)\)", text)
            who = f" (PID {pid.group(1)})" if pid else ""
            raise PreflightError(
                f"the warehouse is in use by another process{who}: {warehouse}; wait for it to "
                "finish or stop it"
            ) from None
        raise PreflightError(
            f"the warehouse {warehouse} cannot be opened ({text.splitlines()[0]}); point "
            "BOOKS_WAREHOUSE at a DuckDB file or a new path"
        ) from None


def check_crm(policy: Any, crm_db: Path) -> None:
    """The local CRM file exists, or the real org's credentials are set and it lets us log in."""
    if policy.crm.kind == "local":
        if not crm_db.is_file():
            raise PreflightError(
                f"the local CRM {crm_db} does not exist; create it with `books generate` or "
                "run `books demo` (or set BOOKS_CRM_DB)"
            )
        return
    check_salesforce(policy.crm.salesforce)


def check_salesforce(names: Any) -> None:
    """Credentials present (by the variable names the policy gives) and a login that works."""
    from crm.retry import RetryPolicy
    from crm.salesforce import CrmError, CrmSettings, connect

    try:
        settings = CrmSettings.from_env(
            instance_url_env=names.instance_url_env,
            client_id_env=names.client_id_env,
            client_secret_env=names.client_secret_env,
            api_version=names.api_version,
        )
    except CrmError as exc:
        raise PreflightError(f"missing Salesforce credentials: {exc.message}") from None
    except ValueError as exc:
        raise PreflightError(f"{names.instance_url_env}: {exc}") from None
    retry = RetryPolicy(max_attempts=LOGIN_ATTEMPTS, base_delay=0.2, timeout=LOGIN_TIMEOUT_SECONDS)
    try:
        connect(settings, policy=retry)
    except CrmError as exc:
        if exc.code in ("CONNECTION_ERROR", "TIMEOUT"):
            raise PreflightError(
                f"cannot reach the CRM at {settings.base_url} ({exc.code.lower()}); check "
                f"{names.instance_url_env} and the network"
            ) from None
        raise PreflightError(
            f"the CRM at {settings.base_url} refused to log in ({exc}); check "
            f"{names.client_id_env} and {names.client_secret_env}"
        ) from None
