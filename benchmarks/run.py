"""Benchmark the books cycle at one scale: `python benchmarks/run.py --scale S|M|L|XL`.

Four kinds of run on one cached world: initial load (empty warehouse), full rebuild
(raw present, every model rebuilt, decisions, write-back), daily cycle (after the full
rebuild: the CRM clock +1 day, 1% of accounts edited, one day of activities added, then the
normal incremental run) and signal run (after the daily cycle: 50 new hot signals and 50
inbound leads, then the run a hot-signal sensor starts, through Dagster only; its figures are
the latency from the trigger to the CRM write and the share of accounts it decided). Each stage runs in its own child process (see measure.py) beside its
limit measured in the same run; the whole `books_cycle` runs through Dagster on a snapshot of
the same starting state. Results: `<out>/<date>-<scale>.md` (+ `.json` for scaling.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import stages  # noqa: E402
from benchmarks.measure import StageResult, run_stage, say  # noqa: E402
from benchmarks.results import ALL_KINDS, SIGNAL, SIGNAL_RUN, render_markdown  # noqa: E402
from benchmarks.world import (  # noqa: E402
    AS_OF,
    SCALES,
    CachedWorld,
    Workspace,
    cache_dir,
    new_workspace,
    scale_with,
    snapshot,
)

log = logging.getLogger("benchmarks")

REPO_ROOT = Path(__file__).resolve().parents[1]
S = "benchmarks.stages."


def _show(result: StageResult) -> StageResult:
    extra = f" ({result.error.splitlines()[0][:160]})" if result.error else ""
    say(
        f"  {result.name:<22} {result.status:<13} {result.seconds:8.2f} s "
        f"{result.peak_rss_mib:8.0f} MiB{extra}"
    )
    return result


def _setup(name: str, func: str, **kwargs: Any) -> dict[str, Any]:
    """Untimed set-up, in a child like the stages (see stages.py, set-up)."""
    return _setup_data(run_stage(name, S + func, **kwargs))


def _setup_data(result: StageResult) -> dict[str, Any]:
    if result.status != "ok":
        raise RuntimeError(f"benchmark set-up '{result.name}' failed: {result.error}")
    return result.data


def _kinds_needed(kind: str) -> list[str]:
    """A kind needs the ones before it (the daily cycle runs after a full rebuild)."""
    if kind == "all":
        return list(ALL_KINDS)
    return list(ALL_KINDS[: ALL_KINDS.index(kind) + 1])


def _run_kind(
    kind: str,
    ws: Workspace,
    *,
    as_of: date,
    attempt: int,
    run_id: str,
    policy_path: Path,
    work: Path,
    dagster: bool,
) -> dict[str, Any]:
    """Set-up (untimed), a Dagster snapshot, then each stage directly with its limit."""
    if kind == SIGNAL:
        return _run_signal(ws, as_of=as_of, policy_path=policy_path, work=work)
    out: dict[str, Any] = {"as_of": as_of.isoformat(), "run_id": run_id, "limits": {}}
    if kind == "full":
        # Raw must reflect the CRM after the initial write-back, as it would on any real day.
        setup = run_stage("set-up extract", S + "extract", crm_db=str(ws.crm_db),
                          warehouse=str(ws.warehouse), landing=str(ws.landing),
                          loaded_at=stages.utc_stamp(as_of))  # fmt: skip
        out["setup"] = (
            f"incremental extract of the initial write-back ({setup.data.get('rows', 0):,} rows, "
            f"{setup.seconds:.1f} s, untimed); dbt transform models run with --full-refresh"
        )
    elif kind == "daily":
        changed = _setup("daily changes", "daily_changes", crm_db=str(ws.crm_db))
        out["setup"] = (
            f"CRM clock +1 day; {changed['accounts_changed']:,} accounts edited and "
            f"{changed['activities_added']:,} activities added through CrmStore.update/insert"
        )
    if "setup" in out:
        say(f"{kind}: set-up: {out['setup']}")
    # One path for every kind's snapshot: dbt keeps its parse per warehouse file
    # (orchestration.dbt_parse.warehouse_target), so, as on a user's warehouse, a run reuses the
    # parse of the run before; a new path would cost every run a full `dbt parse`.
    snap = snapshot(ws, work / "dagster") if dagster else None

    common = {"policy_path": str(policy_path), "as_of": as_of.isoformat(), "run_id": run_id}
    dbt_dir = str(ws.dbt_dir)
    results: list[StageResult] = []
    if kind != "full":
        results.append(_show(run_stage("extract", S + "extract", crm_db=str(ws.crm_db),
                                       warehouse=str(ws.warehouse), landing=str(ws.landing),
                                       loaded_at=stages.utc_stamp(as_of))))  # fmt: skip
    if kind == "initial":
        out["limits"]["extract"] = _show(
            run_stage("extract limit", S + "extract_limit", crm_db=str(ws.crm_db))
        ).as_json()
    results.append(_show(run_stage("contracts", S + "contracts", warehouse=str(ws.warehouse),
                                   run_id=run_id)))  # fmt: skip
    results.append(_show(run_stage(
        "dbt build", S + "dbt_build", warehouse=str(ws.warehouse), dbt_dir=dbt_dir,
        label=f"{kind}-transform", selector="books_cycle_transform", full_refresh=kind == "full", **common,
    )))  # fmt: skip
    results.append(_show(run_stage(
        "decisions", S + "dbt_build", warehouse=str(ws.warehouse), dbt_dir=dbt_dir,
        label=f"{kind}-decisions", selector="books_cycle_decide", **common,
    )))  # fmt: skip
    out["limits"]["dbt raw SQL"] = _raw_sql_limit(ws, kind)
    results.append(_show(run_stage("write-back", S + "write_back", crm_db=str(ws.crm_db),
                                   warehouse=str(ws.warehouse), run_id=run_id,
                                   policy_path=str(policy_path))))  # fmt: skip
    report_out = ws.root / "reports" / f"books_report_{kind}_{as_of}.html"
    results.append(_show(run_stage("report", S + "report", warehouse=str(ws.warehouse),
                                   out=str(report_out), as_of=as_of.isoformat(),
                                   run_id=run_id)))  # fmt: skip
    out["stages"] = [r.as_json() for r in results]
    if snap is not None:
        out["dagster"] = _show(run_stage(
            "books_cycle (Dagster)", S + "dagster_cycle", root=str(snap.root),
            policy_path=str(policy_path), as_of=as_of.isoformat(), attempt=attempt,
        )).as_json()  # fmt: skip
        shutil.rmtree(snap.root, ignore_errors=True)
    return out


def _run_signal(ws: Workspace, *, as_of: date, policy_path: Path, work: Path) -> dict[str, Any]:
    """The run a hot-signal sensor starts after the daily cycle, through Dagster (untimed
    set-up: the new signals and leads in the CRM)."""
    changed = _setup("signal changes", "signal_changes", crm_db=str(ws.crm_db))
    ids = changed["signal_ids"]
    out: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "setup": f"{len(ids)} new intent surges on ready pool accounts and "
        f"{changed['leads_added']} inbound leads from the same accounts' websites "
        "through CrmStore.insert",
        "stages": [],
        "limits": {},
    }
    say(f"{SIGNAL}: set-up: {out['setup']}")
    snap = snapshot(ws, work / "dagster")
    out["dagster"] = _show(run_stage(
        SIGNAL_RUN, S + "dagster_signal_cycle", root=str(snap.root),
        policy_path=str(policy_path), as_of=as_of.isoformat(), signal_ids=ids,
        key=f"benchmark:{ids[-1] if ids else ''}",
    )).as_json()  # fmt: skip
    out["run_id"] = out["dagster"]["data"].get("run_id", "")
    shutil.rmtree(snap.root, ignore_errors=True)
    return out


def _raw_sql_limit(ws: Workspace, kind: str, *, in_place: bool = False) -> dict[str, Any]:
    """Run the compiled SQL of this kind's two dbt builds on a copy of the warehouse (or, for a
    full rebuild short of disk, on the warehouse itself), timed per group (transform models,
    then decision models) in one child and one DuckDB connection."""
    limit_dir = ws.root / "limit"
    shutil.rmtree(limit_dir, ignore_errors=True)
    limit_dir.mkdir()
    copy = limit_dir / ws.warehouse.name  # same file name -> same catalog name in the SQL
    if in_place:
        copy = ws.warehouse
    else:
        shutil.copy2(ws.warehouse, copy)
    manifests = {
        group: str(ws.dbt_dir / f"{kind}-{group}.manifest.json")
        for group in ("transform", "decisions")
    }
    result = run_stage("dbt raw SQL", S + "dbt_raw_sql_groups", warehouse_copy=str(copy),
                       manifests=manifests, incremental=kind == "daily")  # fmt: skip
    shutil.rmtree(limit_dir, ignore_errors=True)
    return _show(result).as_json()


def _machine() -> str:
    mem = ""
    try:
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = f", load average {os.getloadavg()[0]:.1f} at start (shared machine)"
    limit = os.environ.get("BOOKS_DUCKDB_MEMORY_LIMIT")
    dbt_memory = f", dbt's DuckDB memory_limit {limit}" if limit else ""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{mem}{load}{dbt_memory}"


def _commit() -> str:
    """The commit measured, and whether uncommitted changes were measured with it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + (" (+ working tree)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _world_counts(crm_db: Path) -> str:
    import sqlite3

    con = sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True)
    try:
        parts = []
        for obj in ("Account", "User", "Contact", "Task", "Event"):
            parts.append(f"{obj} {con.execute(f'SELECT count(*) FROM {obj}').fetchone()[0]:,}")
    finally:
        con.close()
    return ", ".join(parts)


def run(
    scale_name: str,
    kind: str = "all",
    out_dir: Path = REPO_ROOT / "benchmarks" / "results",
    *,
    accounts: int | None = None,
    dagster: bool = True,
    today: date | None = None,
) -> Path:
    """Run the benchmark; returns the markdown results file."""
    from orchestration.cycle import make_run_id
    from policy import load_policy, policy_version, resolve_paths

    scale = scale_with(scale_name, accounts)
    policy_path = resolve_paths().policy
    version = policy_version(load_policy(policy_path))
    say(f"scale {scale.name}: {scale.accounts:,} accounts, {scale.reps:,} reps, "
         f"~{scale.activities:,} activities; cache {cache_dir()}")  # fmt: skip
    world = CachedWorld(**_setup("world", "world", scale=scale, policy_path=str(policy_path)))
    say(
        f"world generated in {world.seconds:.1f} s" if world.generated
        else f"world cached: {world.crm_db.parent}"
    )  # fmt: skip
    work = cache_dir() / "work" / f"{scale.name}-{scale.accounts}"
    ws = new_workspace(work / "direct", world)
    result: dict[str, Any] = {
        "scale": scale.name,
        "accounts": scale.accounts,
        "reps": scale.reps,
        "activities": scale.activities,
        "date": (today or date.today()).isoformat(),  # benchmark bookkeeping, not product logic
        "machine": _machine(),
        "commit": _commit(),
        "world": {
            "generated": world.generated,
            "seconds": world.seconds,
            "counts": _world_counts(world.crm_db),
        },  # fmt: skip
        "kinds": {},
    }
    plan = {
        "initial": (AS_OF, 1),
        "full": (AS_OF, 2),  # a second cycle for the same day: its own run id
        "daily": (AS_OF + timedelta(days=1), 1),
        SIGNAL: (AS_OF + timedelta(days=1), 1),  # out of cycle, the same day as the daily run
    }
    for kind_name in _kinds_needed(kind):
        as_of, attempt = plan[kind_name]
        run_id = make_run_id(as_of, version, attempt)
        say(f"{kind_name}: as of {as_of}, run {run_id}")
        result["kinds"][kind_name] = _run_kind(
            kind_name, ws, as_of=as_of, attempt=attempt, run_id=run_id,
            policy_path=policy_path, work=work, dagster=dagster,
        )  # fmt: skip
        md = _write(result, out_dir)  # after every kind: a crash later keeps what was measured
    return md


def run_replica(
    source_scale: str,
    scale_name: str,
    out_dir: Path = REPO_ROOT / "benchmarks" / "results",
    *,
    source_accounts: int | None = None,
    today: date | None = None,
) -> Path:
    """The full rebuild of `scale_name` on a raw layer replicated from `source_scale`'s benchmark
    warehouse (benchmarks/replica.py): contracts, dbt build, decisions, the write-back plan and
    the report, each timed; no CRM, so no extract, no write-back apply and no Dagster run."""
    from orchestration.cycle import make_run_id
    from policy import load_policy, policy_version, resolve_paths

    source, target = scale_with(source_scale, source_accounts), SCALES[scale_name]
    copies = target.accounts // source.accounts
    user_groups = max(1, target.reps // source.reps)
    task_share = max(1, round(source.activities * copies / target.activities))
    if source_accounts is not None:  # smoke test: a replica of a shrunk world, all of it
        copies, user_groups, task_share = 2, 2, 1
    src_wh = cache_dir() / "work" / f"{source.name}-{source.accounts}" / "direct" / "wh"
    if not (src_wh / "warehouse.duckdb").exists():
        raise FileNotFoundError(
            f"no {source.name} benchmark warehouse at {src_wh}: run "
            f"`benchmarks/run.py --scale {source.name}` first"
        )
    policy_path = resolve_paths().policy
    work = cache_dir() / "work" / f"{scale_name}-replica-of-{source.name}"
    shutil.rmtree(work, ignore_errors=True)
    ws = Workspace(work)
    say(f"replica: {copies} copies of {src_wh}, {user_groups} groups of reps, "
         f"1/{task_share} of the tasks per copy -> {ws.warehouse}")  # fmt: skip
    built = run_stage("replica", S + "replica", source=str(src_wh / "warehouse.duckdb"),
                      replica_path=str(ws.warehouse), copies=copies, user_groups=user_groups,
                      task_share=task_share)  # fmt: skip
    counts = _setup_data(_show(built))["rows"]
    as_of = _latest_as_of(src_wh / "warehouse.duckdb")  # the day the copied raw layer is from
    run_id = make_run_id(as_of, policy_version(load_policy(policy_path)), 1)
    result: dict[str, Any] = {
        "scale": scale_name,
        "accounts": counts["raw_salesforce.account"],
        "reps": target.reps if source_accounts is None else source.reps * user_groups,
        "activities": counts["raw_salesforce.task"] + counts["raw_salesforce.event"],
        "date": (today or date.today()).isoformat(),
        "machine": _machine(),
        "commit": _commit(),
        "world": {
            "generated": True,
            "seconds": built.seconds,
            "peak_rss_mib": built.peak_rss_mib,
            "replica": f"{copies} copies of the {source.name} benchmark's raw layer "
            f"(benchmarks/replica.py; {user_groups} groups of reps, 1/{task_share} "
            "of the tasks per copy)",
            "counts": ", ".join(
                f"{name.split('.')[-1]} {n:,}"
                for name, n in counts.items()
                if name.startswith("raw_salesforce.") and "_dlt" not in name
            ),
        },  # fmt: skip
        "kinds": {},
        "warehouse": str(ws.warehouse),
    }
    common = {"policy_path": str(policy_path), "as_of": as_of.isoformat(), "run_id": run_id}
    stage_runs = [
        ("contracts", "contracts", {"warehouse": str(ws.warehouse), "run_id": run_id}),
        ("dbt build", "dbt_build", {"warehouse": str(ws.warehouse), "dbt_dir": str(ws.dbt_dir),
         "label": "full-transform", "selector": "books_cycle_transform", "full_refresh": True,
         **common}),
        ("decisions", "dbt_build", {"warehouse": str(ws.warehouse), "dbt_dir": str(ws.dbt_dir),
         "label": "full-decisions", "selector": "books_cycle_decide", **common}),
        ("write-back", "write_back_plan", {"warehouse": str(ws.warehouse), "run_id": run_id,
         "policy_path": str(policy_path)}),
        ("report", "report", {"warehouse": str(ws.warehouse), "as_of": as_of.isoformat(),
         "out": str(ws.root / "reports" / f"books_report_full_{as_of}.html"), "run_id": run_id}),
    ]  # fmt: skip
    kind: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "limits": {},
        "setup": "a new warehouse holding only the replicated raw layer: the contracts check "
        "every row (no earlier contract run; at L's full rebuild they check only the loads "
        "since the last run), dbt builds every model with --full-refresh",
        "stages": [],
    }
    result["kinds"]["full"] = kind
    for name, func, kwargs in stage_runs:
        kind["stages"].append(_show(run_stage(name, S + func, **kwargs)).as_json())
        _write(result, out_dir)
    # A copy of an XL warehouse may not fit on the disk; a full rebuild's compiled SQL only
    # replaces tables with what dbt just built, so it may then run on the warehouse itself.
    size = ws.warehouse.stat().st_size
    in_place = shutil.disk_usage(ws.root).free < 2 * size
    kind["limits"]["dbt raw SQL"] = _raw_sql_limit(ws, "full", in_place=in_place)
    if in_place:
        kind["setup"] += "; the raw SQL limit ran on the warehouse itself (no disk for a copy)"
    return _write(result, out_dir)


def _latest_as_of(warehouse: Path) -> date:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute("select max(as_of_date) from ops.run_context").fetchone()
    return row[0] if row and row[0] else AS_OF


def _write(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{result['date']}-{result['scale']}.md"
    md.write_text(render_markdown(result), encoding="utf-8")
    md.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str), "utf-8")
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", required=True, choices=list(SCALES))
    parser.add_argument("--kind", default="all", choices=[*ALL_KINDS, "all"])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--accounts", type=int, help=argparse.SUPPRESS)  # smoke tests only
    parser.add_argument("--no-dagster", action="store_true",
                        help="skip the whole-cycle run through Dagster (the signal run, Dagster only, still runs)")  # fmt: skip
    parser.add_argument("--replica-of", choices=list(SCALES),
                        help="full rebuild only, on the raw layer of this scale's benchmark "
                        "replicated to --scale (XL: 10 copies of L; see replica.py)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.replica_of:
        md = run_replica(args.replica_of, args.scale, args.out.resolve())
    else:
        md = run(args.scale, args.kind, args.out.resolve(), accounts=args.accounts,
                 dagster=not args.no_dagster)  # fmt: skip
    print(md.read_text(encoding="utf-8"))
    say(f"results: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
