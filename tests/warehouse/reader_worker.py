"""An analyst/dashboard stand-in: query every published table in a loop, read-only.

Each read opens the analytics file, reads `published_run_id` from every table and the
`_published_run` stamp, and counts an error for any exception and a mix for more than one run
id in one read. Runs until the stop file appears; writes its tallies as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb


def main(analytics: str, stop: str, out: str) -> None:
    reads, errors, mixes, runs = 0, [], 0, set()
    while not Path(stop).exists():
        if not Path(analytics).exists():
            time.sleep(0.01)
            continue
        try:
            with duckdb.connect(analytics, read_only=True) as con:
                stamp = con.execute("select run_id, tables from _published_run").fetchone()
                seen = {stamp[0]}
                for qualified in stamp[1]:
                    schema, table = qualified.split(".")
                    seen |= {r[0] for r in con.execute(
                        f'select distinct published_run_id from "{schema}"."{table}"'
                    ).fetchall()}  # fmt: skip
                    con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
            reads += 1
            mixes += len(seen) > 1
            runs |= seen
        except Exception as exc:  # noqa: BLE001 - the test counts every failure
            errors.append(f"{type(exc).__name__}: {exc}")
    Path(out).write_text(json.dumps({"reads": reads, "errors": errors, "mixes": mixes,
                                     "runs": sorted(runs)}))  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:4])
