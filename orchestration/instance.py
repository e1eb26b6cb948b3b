"""The persistent Dagster instance a `books run` records its runs in (DAGSTER_HOME)."""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

import dagster as dg

log = logging.getLogger(__name__)

DAGSTER_YAML = """# Written by dynamic-books: DuckDB has one writer, so the pool of every step that
# writes the warehouse file runs one step at a time.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def ensure_dagster_home(home: Path) -> Path:
    """Create DAGSTER_HOME with a dagster.yaml that limits the `duckdb_writer` pool to 1.

    An existing dagster.yaml is the user's: it is kept, with a warning if it sets no pool limit.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    elif "concurrency" not in config.read_text(encoding="utf-8"):
        log.warning(
            "%s sets no concurrency limits; steps writing the DuckDB warehouse may collide. "
            "Add:\n%s",
            config,
            DAGSTER_YAML,
        )
    return home


def open_instance(home: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance in `home` (created with ensure_dagster_home if needed).

    Opening a fresh home creates its SQLite storage; two processes doing that at once (a
    `books run` and a scheduled run on a new machine) both fail with "table ... already exists".
    An exclusive file lock makes the first one create it and the other open it afterwards.
    """
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".books-instance.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.from_config(str(ensure_dagster_home(home)))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
