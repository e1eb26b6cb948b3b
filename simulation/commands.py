"""`books twin` and `books simulate`: their arguments and what they do (books_cli.main wires
them in and prints the lines they return). Heavy imports happen when a command runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_WEEKS = 4


def add_commands(sub: Any, positive: Any, as_date: Any) -> None:
    """Register the lab's subcommands on the `books` parser's subparsers."""
    twin = sub.add_parser(
        "twin",
        help="make a twin of the CRM for the policy lab (a local CRM file)",
        description="Copy the CRM as the warehouse last read it (--from-warehouse) or generate "
        "a world into a new local CRM file the simulation may write to. Never writes to a CRM.",
    )
    twin.add_argument("--out", metavar="PATH", help="the twin file (default data/twin.sqlite)")
    twin.add_argument(
        "--from-warehouse", action="store_true", help="copy raw_salesforce of $BOOKS_WAREHOUSE"
    )
    twin.add_argument("--accounts", type=positive, metavar="N", help="generate N accounts")
    twin.add_argument(
        "--reps", type=positive, metavar="M", default=10, help="generate M reps (default 10)"
    )
    twin.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    twin.add_argument(
        "--months", type=positive, default=6, help="months of history to generate (default 6)"
    )
    twin.add_argument(
        "--as-of",
        type=as_date,
        metavar="DATE",
        default=date(2025, 6, 2),
        help="the generated world's today, YYYY-MM-DD (default 2025-06-02)",
    )
    twin.set_defaults(lab_command="twin")

    sim = sub.add_parser(
        "simulate",
        help="simulate weeks of dynamic books on a twin, per policy and against static books",
        description="Run the production cycle day by day on copies of a twin, with reps "
        "modelled from their history, for each --policy and a static-territory baseline; "
        "store weekly KPIs in simulation.weekly_kpis and print the last week side by side.",
    )
    sim.add_argument(
        "--policy", action="append", metavar="PATH", help="a policy arm (repeatable; books.yml)"
    )
    sim.add_argument("--twin", metavar="PATH", help="the twin (default data/twin.sqlite)")
    sim.add_argument(
        "--weeks",
        type=positive,
        default=DEFAULT_WEEKS,
        help=f"simulated weeks (default {DEFAULT_WEEKS})",
    )
    sim.add_argument("--days", type=positive, help="simulate this many days instead of weeks")
    sim.add_argument("--behaviour", metavar="PATH", help="behaviour parameters (YAML)")
    sim.add_argument("--seed", type=int, help="behaviour seed (beats the file's)")
    sim.add_argument("--no-static", action="store_true", help="leave out the static baseline")
    sim.add_argument(
        "--chaos",
        action="store_true",
        help="managers move accounts by hand and a rep leaves on day 10 (policy arms); the "
        "per-cycle invariants still hold",
    )
    sim.add_argument(
        "--holdout",
        type=float,
        metavar="SHARE",
        help="keep this share of the accounts (0-1, stratified by segment and fit tier) on "
        "static rules inside each policy arm; reports each KPI's uplift with a bootstrap interval",
    )
    sim.add_argument("--workdir", metavar="DIR", help="arm folders (default data/simulation)")
    sim.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    sim.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sim.set_defaults(lab_command="simulate")


def _user_error(message: str) -> Exception:
    from books_cli.main import UserError

    return UserError(message)


def make_twin(args: argparse.Namespace) -> list[str]:
    from policy.paths import resolve_paths
    from simulation.twin import TwinError, generate_twin, twin_from_warehouse

    paths = resolve_paths()
    out = Path(args.out).resolve() if args.out else paths.crm_db.parent / "twin.sqlite"
    if out.exists():
        raise _user_error(f"{out} already exists; remove it or pass another --out")
    try:
        if args.from_warehouse:
            summary = twin_from_warehouse(paths.warehouse, out)
        elif args.accounts:
            summary = generate_twin(out, accounts=args.accounts, reps=args.reps, seed=args.seed,
                                    months=args.months, as_of=args.as_of, landing_dir=None)  # fmt: skip
        else:
            raise _user_error("say --from-warehouse, or --accounts N to generate a world")
    except TwinError as exc:
        raise _user_error(str(exc)) from None
    rows = ", ".join(f"{k}: {v:,}" for k, v in summary.rows.items())
    return [f"twin {summary.path} (clock {summary.clock}): {rows}"]


def run_simulation(args: argparse.Namespace, say: Callable[[str], None]) -> list[str]:
    from policy.paths import resolve_paths
    from simulation.chaos import ChaosPlan
    from simulation.lab import arms_for, simulate
    from simulation.params import BehaviourError, load_params
    from simulation.report import write_report
    from simulation.results import capacity_table, comparison_table, save, uplift_table

    if args.holdout is not None and not 0 < args.holdout < 1:
        raise _user_error(f"--holdout must be a share between 0 and 1 (got {args.holdout})")
    paths = resolve_paths()
    twin = Path(args.twin).resolve() if args.twin else paths.crm_db.parent / "twin.sqlite"
    if not twin.exists():
        raise _user_error(f"no twin at {twin}; make one with `books twin --from-warehouse`")
    given = [args.policy] if isinstance(args.policy, str) else (args.policy or [])
    policies = [Path(p).resolve() for p in (given or [str(paths.policy)])]
    for p in policies:
        if not p.exists():
            raise _user_error(f"policy file not found: {p}")
    try:
        extra = {"seed": args.seed} if args.seed is not None else {}
        params = load_params(Path(args.behaviour) if args.behaviour else None, **extra)
    except BehaviourError as exc:
        raise _user_error(str(exc)) from None
    days = args.days or 7 * args.weeks
    workdir = Path(args.workdir).resolve() if args.workdir else paths.crm_db.parent / "simulation"
    sim = simulate(
        twin, arms_for(policies, static=not args.no_static), workdir / _stamp(twin, days),
        days=days, params=params, reference_policy=policies[0], say=say,
        chaos=ChaosPlan() if args.chaos else None, holdout=args.holdout or 0.0,
    )  # fmt: skip
    save(sim, paths.warehouse)
    report = write_report(sim, workdir / f"report_{sim.simulation_id}.html")
    lines = [comparison_table(sim), capacity_table(sim)]
    if uplift := uplift_table(sim):
        lines.append(uplift)
    for arm in sim.arms:
        t = arm.timings
        per_minute = days / (arm.wall_seconds / 60) if arm.wall_seconds else float("inf")
        cycles = json.dumps({k: round(v) for k, v in sorted(t.cycles.items())})
        lines.append(f"{arm.name}: {per_minute:.2f} simulated days/min; behaviour "
                     f"{t.behaviour:.0f}s, KPIs {t.kpis:.0f}s, cycles {cycles}s")  # fmt: skip
    for arm in sim.arms:
        if arm.guard_holds:
            days_held = ", ".join(f"{d} {m}" for d, m in arm.guard_holds)
            lines.append(f"{arm.name}: {len(arm.guard_holds)} cycle(s) held by the write guard "
                         f"({days_held}): their moves wait for review")  # fmt: skip
    lines.append(f"results: simulation.runs / simulation.weekly_kpis in {paths.warehouse} "
                 f"(simulation_id {sim.simulation_id})")  # fmt: skip
    lines.append(f"report: {report}")
    return lines


def _stamp(twin: Path, days: int) -> str:
    """A fresh arm folder per invocation (arms copy the twin into new files)."""
    import time

    return f"{twin.stem}-{days}d-{time.strftime('%Y%m%dT%H%M%S')}"
