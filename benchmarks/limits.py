"""Physical limits the benchmark compares stages against, measured in the same run.

Extract: the floor for moving CRM rows into Python is reading the very same rows and columns
(every object, deleted and archived rows included, personal fields excluded, exactly what
`ingest` extracts) straight from the local CRM's SQLite file with the standard sqlite3 module:
no HTTP, no CSV, no parsing, no warehouse write.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from ingest.fields import object_specs
from local_crm.db import qi

log = logging.getLogger(__name__)

FETCH_ROWS = 100_000


def read_sqlite_direct(db_path: str | Path) -> tuple[int, float]:
    """(rows read, seconds): every extracted row of every object, read from SQLite directly."""
    path = Path(db_path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"no local CRM database at {path}")
    started = time.perf_counter()
    rows = 0
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        for spec in object_specs().values():
            cols = ", ".join(qi(name) for name in spec.field_names)
            cur = con.execute(f"SELECT {cols} FROM {qi(spec.name)}")
            n = 0
            while batch := cur.fetchmany(FETCH_ROWS):
                n += len(batch)
            log.debug("%s: %d rows read directly", spec.name, n)
            rows += n
    finally:
        con.close()
    return rows, time.perf_counter() - started
