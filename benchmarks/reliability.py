"""Reliability figures: inject each fault the pipeline promises to survive and count what was
lost, doubled and detected. `python benchmarks/reliability.py [--accounts N] [--kills N]`

Each scenario is the one its regression test runs, through the test module's own helper (not a
second implementation): silent drops (tests/reverse_etl/test_silent_drops.py), late rows
(tests/ingest/test_reconcile.py), a landing file with a bad row (tests/ingest/test_files.py),
a 10 MB value (tests/ingest/test_bad_records.py) and kills at random points of a cycle
(tests/e2e/test_kill_recovery.py: one chain of `--kills` SIGKILLs, then a same-date run, beside
one uninterrupted run; each kill costs up to a cycle, so `--kills 0` skips them).
Columns: injected = faults put in; lost = wanted values or rows missing at the end (after the
documented recovery: a same-date re-run, the reconciliation); doubled = writes or rows present
twice; detected = faults the product noticed and reported (read-back mismatches, rows the
reconciliation found, rows quarantined, killed runs found dead and marked failed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/reliability.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402

ROUTES = {"Collections": "collections", "Bulk 2.0": "bulk"}


@dataclass
class Figure:
    """One row of the table."""

    fault: str
    injected: int
    lost: int
    doubled: int
    detected: int
    note: str = ""
    seconds: float = 0.0


def silent_drops(tmp: Path, route: str, accounts: int) -> Figure:
    """0.5% of writes answered "success" but not saved; then a same-date re-run."""
    from tests.reverse_etl.test_silent_drops import (
        PATHS,
        dropped_run,
        missing_values,
        write_changes,
    )

    path, threshold = PATHS[ROUTES[route]]
    world, wanted, _sticky, fault, report = dropped_run(tmp, path, threshold, accounts)
    try:
        failing = report.summary["still_failing"]
        write_changes(world, "run-1", wanted, threshold)  # the documented recovery
        lost = len(missing_values(world, wanted))
        to_wanted = Counter(a for a, _, new in world.owner_history() if new == wanted[a]["OwnerId"])
    finally:
        world.server.stop()
    return Figure(
        f"silent drops, 0.5% of {accounts:,} writes + 2 records on every try ({route})",
        injected=fault.fired,
        lost=lost,
        doubled=sum(1 for n in to_wanted.values() if n > 1),
        detected=report.readback_mismatches,
        note=f"{failing} still failing after the run, repaired by a same-date re-run",
    )


def late_rows(tmp: Path, lookback_minutes: int, bulk_threshold: int, accounts: int) -> Figure:
    """Rows created and updated 5 min, 2 h and 3 days behind the cursor; reconciliation."""
    from tests.ingest.test_reconcile import late_rows as run

    late = run(tmp, lookback_minutes, bulk_threshold, n_accounts=accounts)
    lost = [i for i, name in late.expected.items() if name not in late.loaded.get(i, [])]
    found = late.stats["Account"].found
    via = "Bulk 2.0" if bulk_threshold < accounts else "REST"
    return Figure(
        f"late rows 5 min / 2 h / 3 days behind, look-back {lookback_minutes} min ({via})",
        injected=len(late.expected),
        lost=len(lost),
        doubled=sum(1 for names in late.loaded.values() if len(names) > 1),
        detected=found,
        note=f"count warning before: {'yes' if late.gaps_before else 'no'}, after: "
        f"{'yes' if late.gaps_after else 'no'}; {len(late.expected) - found} loaded within the "
        f"look-back, {found} by the reconciliation",
    )


def bad_rows(tmp: Path) -> Figure:
    """An intent file of 51 rows, one with a score that is not a number; loaded twice."""
    from ingest.files import run_file_ingest
    from tests.ingest.test_files import table_rows, write_intent

    landing, warehouse = tmp / "landing", tmp / "warehouse.duckdb"
    rows = [(f"d{i}.com", "crm", i, "2025-02-24") for i in range(51)]
    rows[36] = ("d36.com", "crm", "n/a", "2025-02-24")
    write_intent(landing, "w9.csv", rows)
    stamp = datetime(2025, 3, 3, tzinfo=UTC)
    first = run_file_ingest(landing, warehouse, loaded_at=stamp, run_id="run-1")
    run_file_ingest(landing, warehouse, loaded_at=stamp, run_id="run-2")  # a re-run
    domains = Counter(r[0] for r in table_rows(warehouse, "intent_surges"))
    good = {f"d{i}.com" for i in range(51)} - {"d36.com"}
    return Figure(
        "landing file with 1 bad row of 51",
        injected=1,
        lost=len(good - set(domains)),
        doubled=sum(1 for n in domains.values() if n > 1),
        detected=sum(first.quarantined.values()),
        note=f"{len(set(domains) & good)} good rows loaded; the bad one quarantined by row",
    )


def big_value(tmp: Path, accounts: int) -> Figure:
    """A 10 MB Account name that got below the CRM's API; the extract."""
    from ingest.salesforce import run_salesforce_ingest
    from local_crm.db import CrmStore
    from local_crm.server import start_in_process
    from tests.ingest.conftest import local_connection, seed_world
    from tests.ingest.test_bad_records import TEN_MB, set_below_api

    db, warehouse = tmp / "crm.sqlite", tmp / "warehouse.duckdb"
    store = CrmStore(db)
    _users, ids, _ = seed_world(store, n_accounts=accounts)
    bad = ids[len(ids) // 2]
    set_below_api(store, bad, "Name", TEN_MB)
    server = start_in_process(db)
    try:
        stats = run_salesforce_ingest(local_connection(server), warehouse, run_id="run-1")
    finally:
        server.stop()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = Counter(
            r[0] for r in con.execute("select id from raw_salesforce.account").fetchall()
        )
    others = set(store_ids(store)) - {bad}
    return Figure(
        "CRM record with a 10 MB value",
        injected=1,
        lost=len(others - set(loaded)),
        doubled=sum(1 for n in loaded.values() if n > 1),
        detected=sum(1 for q in stats["Account"].quarantined if q.record_id == bad),
        note=f"{len(others & set(loaded)):,} other accounts loaded; the bad one quarantined",
    )


def store_ids(store: object) -> list[str]:
    """Every Account id the local CRM holds (deleted ones too: the extract loads them)."""
    import sqlite3

    with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as con:  # type: ignore[attr-defined]
        return [r[0] for r in con.execute('SELECT "Id" FROM "Account"').fetchall()]


def kills(tmp: Path, count: int, seed: int) -> Figure:
    """`count` SIGKILLs of `books run` at seeded random points, then a same-date run."""
    from tests.e2e import test_kill_recovery as k

    baseline_env = k.make_world(tmp / "uninterrupted")
    run = ["run", "--as-of", k.AS_OF.isoformat(), "--override-guard"]
    subprocess.run(k.books_command(*run), cwd=k.REPO, env=baseline_env, check=True,
                   capture_output=True, timeout=k.RECOVERY_TIMEOUT)  # fmt: skip
    uninterrupted = k.outcome(baseline_env).given_to_reps

    env = k.make_world(tmp / "killed")
    points = [p for n in range(count // 10 + 1) for p in k.draw_points(seed + n)][:count]
    for point in points:
        k.kill_at(k.books_command(*run, "-v", slow=point.slow), env, point)
    done = subprocess.run(k.books_command(*run), cwd=k.REPO, env=env, capture_output=True,
                          timeout=k.RECOVERY_TIMEOUT)  # fmt: skip
    after = k.outcome(env)
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    marked = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    stages = Counter(p.stage for p in points)
    return Figure(
        f"SIGKILL at {count} random points (seed {seed})",
        injected=count,
        lost=len(after.lost) + max(0, uninterrupted - after.given_to_reps),
        doubled=len(after.doubled),
        detected=len(marked),
        note=f"{', '.join(f'{n} {s}' for s, n in sorted(stages.items()))}; final run "
        f"{'completed' if done.returncode == 0 else 'FAILED'}; stuck {len(after.stuck)}, "
        f"runs left started {len(after.runs_not_ended)}",
    )


def scenarios(accounts: int, kill_count: int, seed: int) -> list[tuple[str, Callable]]:
    """(name, callable taking a fresh folder) for every scenario to run."""
    out: list[tuple[str, Callable]] = [
        (f"drops-{r}", lambda t, r=r: silent_drops(t, r, accounts)) for r in ROUTES
    ]
    out += [
        ("late-rest", lambda t: late_rows(t, 15, 10_000, max(accounts // 10, 80))),
        ("late-bulk", lambda t: late_rows(t, 0, 10, max(accounts // 10, 80))),
        ("bad-rows", bad_rows),
        ("big-value", lambda t: big_value(t, max(accounts // 10, 80))),
    ]
    if kill_count:
        out.append(("kills", lambda t: kills(t, kill_count, seed)))
    return out


def render(figures: list[Figure]) -> str:
    """A Markdown table: fault, injected, lost, doubled, detected, note."""
    lines = [
        "| fault | injected | lost | doubled | detected | note | s |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    lines += [
        f"| {f.fault} | {f.injected:,} | {f.lost:,} | {f.doubled:,} | {f.detected:,} | "
        f"{f.note} | {f.seconds:.0f} |"
        for f in figures
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000, help="accounts written (drops)")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs (0: skip, ~1 cycle each)")
    parser.add_argument("--seed", type=int, default=20, help="seed of the kill points")
    parser.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    args = parser.parse_args(argv)
    figures = []
    for name, scenario in scenarios(args.accounts, args.kills, args.seed):
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"reliability-{name}-") as tmp:
            started = time.perf_counter()
            figure = scenario(Path(tmp))
            figure.seconds = time.perf_counter() - started
        figures.append(figure)
        print(f"{name}: done in {figure.seconds:.0f}s", file=sys.stderr, flush=True)
    print(render(figures))
    return 0 if all(f.lost == 0 and f.doubled == 0 for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
