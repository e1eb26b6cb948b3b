"""A stand-in for a cycle: hold the warehouse lease, write to the warehouse, log the interval.

Run as a script by the lease tests (two real processes). Exit code 3 + one line on stderr when
the warehouse is busy, as the CLI does.
"""

from __future__ import annotations

import sys
import time

import duckdb

from warehouse.lease import WarehouseBusyError, acquire


def main(warehouse: str, log_path: str, name: str, wait: float, hold: float) -> int:
    try:
        with acquire(warehouse, f"test cycle {name}", wait_seconds=wait, poll_seconds=0.05):
            start = time.time()
            with duckdb.connect(warehouse) as con:
                con.execute("create table if not exists writes (who varchar, written_at double)")
                for _ in range(5):
                    con.execute("insert into writes values (?, ?)", [name, time.time()])
                    time.sleep(hold / 5)
            end = time.time()
        with open(log_path, "a") as out:
            out.write(f"{name} {start} {end}\n")
        return 0
    except WarehouseBusyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 3


if __name__ == "__main__":
    w, log, who, wait_s, hold_s = sys.argv[1:6]
    sys.exit(main(w, log, who, float(wait_s), float(hold_s)))
