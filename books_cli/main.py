"""The `books` console script.

Thin on purpose: parse arguments, resolve paths and the policy, call the packages. Heavy
imports (dagster, duckdb, polars, the generator) happen inside the commands so `books --help`
and `books validate-policy` start fast. A user mistake (bad policy, bad date, missing file, a
locked database, missing or refused CRM credentials: `preflight`) prints one line and exits 2,
never a traceback. A cycle's console shows progress and the summary; Dagster's and dbt's detail
go to a log file (`console`), and a dry run prints its plan (`plan`).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from orchestration.demo import DEMO_ACCOUNTS, DEMO_AS_OF, DEMO_MONTHS, DEMO_REPS, DEMO_SEED

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USER = 2

log = logging.getLogger("books")


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


class Unavailable(Exception):
    """A part of the product that this installation lacks (exit code 1, one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r} (expected YYYY-MM-DD)") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port {value} must be <= 65535")
    return value


# --- shared setup -------------------------------------------------------------------------------
def _paths(args: argparse.Namespace) -> Any:
    from policy.paths import resolve_paths

    return resolve_paths(policy=getattr(args, "policy", None))


def _prepare(args: argparse.Namespace) -> tuple[Any, Any]:
    """Resolve paths, validate the policy, and export absolute paths for every subprocess."""
    from policy import load_policy

    paths = _paths(args)
    policy = load_policy(paths.policy)
    os.environ.update(paths.as_env())
    return paths, policy


def _import(module: str, name: str, what: str) -> Callable[..., Any]:
    """Import a command's implementation lazily, with a clear message if it is missing."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise Unavailable(f"{what} is not available: module {exc.name!r} is missing") from None
        raise
    try:
        return getattr(mod, name)
    except AttributeError:
        raise Unavailable(f"{what} is not available: {module}.{name} is missing") from None


def _progress(args: argparse.Namespace) -> Any:
    """Progress lines on the console's stderr (made before `_detail` sends stderr to the log)."""
    from books_cli.progress import ProgressPrinter

    return ProgressPrinter(quiet=args.quiet)


@contextmanager
def _detail(args: argparse.Namespace, paths: Any, command: str) -> Iterator[Any]:
    """Dagster's and dbt's detail to a log file for the block (and the console with -v)."""
    from books_cli.console import detail_to_log, log_file_for

    path = log_file_for(paths.warehouse, command)
    with detail_to_log(path, verbose=getattr(args, "verbose", False)) as detail:
        yield detail


@contextmanager
def _engine(args: argparse.Namespace, paths: Any) -> Iterator[Any]:
    """The demo's engine: the policy's, or `--engine spark` on a loopback cluster it starts
    (and stops) for the run (orchestration/spark_local.py)."""
    if getattr(args, "engine", None) != "spark":
        yield paths
        return
    local_spark = _import("orchestration.spark_local", "local_spark", "the Spark engine")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise Unavailable(
            "--engine spark needs pyspark: make setup-spark, then .venv-spark/bin/books"
        ) from None
    with local_spark(paths) as spark_paths:
        yield spark_paths


def _preflight(paths: Any, policy: Any, *, crm: bool) -> None:
    """What the cycle needs, checked before it starts (each failure is one line)."""
    from books_cli.preflight import check_crm, check_landing, check_warehouse
    from warehouse.engine import EngineError, spark_tables_dir

    check_landing(paths.landing)
    check_warehouse(paths.warehouse)
    try:
        spark_tables_dir(policy)  # engine spark: its connection settings are in the environment
    except EngineError as exc:
        raise UserError(str(exc)) from None
    if crm:
        check_crm(policy, paths.crm_db)


def _generate(
    args: argparse.Namespace,
    paths: Any,
    *,
    accounts: int,
    reps: int,
    seed: int,
    months: int,
    as_of: date,
) -> Any:
    generate_world = _import("local_crm.generator", "generate_world", "the world generator")
    paths.landing.mkdir(parents=True, exist_ok=True)
    return generate_world(
        paths.crm_db,
        accounts=accounts,
        reps=reps,
        seed=seed,
        months=months,
        as_of=as_of,
        landing_dir=paths.landing,
        progress=_progress(args),
        policy_path=paths.policy,
    )


def _run_cycle(
    args: argparse.Namespace, as_of: date, progress: Any, *, dry_run: bool, override: bool
) -> Any:
    run_cycle = _import("orchestration.runner", "run_cycle", "the cycle runner")
    accept = tuple(getattr(args, "accept_row_drop", None) or ())
    if accept:
        from contracts.overrides import parse_objects

        try:
            accept = parse_objects(accept)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if not (args.by and args.reason):
            raise UserError("--accept-row-drop needs --by WHO and --reason WHY (for the audit)")
    return run_cycle(
        as_of=as_of,
        dry_run=dry_run,
        override_guard=override,
        progress=progress,
        lease_wait_seconds=getattr(args, "wait", 0.0),
        accept_row_drop=accept,
        accepted_by=getattr(args, "by", None) or "",
        accept_reason=getattr(args, "reason", None) or "",
        reconcile=getattr(args, "reconcile", False),
    )


def _show_summary(summary: Any) -> None:
    render = getattr(summary, "render", None)
    print(render() if callable(render) else summary)


# --- commands -----------------------------------------------------------------------------------
def cmd_validate_policy(args: argparse.Namespace) -> int:
    from policy import load_policy, policy_version

    file = Path(args.file).resolve() if args.file else _paths(args).policy
    policy = load_policy(file)
    version = policy_version(policy)
    print(f"{file}: valid (policy version {version[:12]}; full {version})")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    paths, _ = _prepare(args)
    if paths.crm_db.exists():
        if not args.force:
            raise UserError(f"{paths.crm_db} already exists; pass --force to replace it")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{paths.crm_db}{suffix}").unlink(missing_ok=True)
    summary = _generate(
        args,
        paths,
        accounts=args.accounts,
        reps=args.reps,
        seed=args.seed,
        months=args.months,
        as_of=args.as_of,
    )
    counts = getattr(summary, "counts", None)
    print(f"generated world in {paths.crm_db} (as of {args.as_of})")
    if isinstance(counts, dict):
        print("  " + ", ".join(f"{name}: {count:,}" for name, count in counts.items()))
    return EXIT_OK


def _exit_code(summary: Any) -> int:
    """A cycle that ran but failed a step (or a gate) exits 1; its summary says where."""
    return EXIT_OK if getattr(summary, "success", True) else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    paths, policy = _prepare(args)
    _preflight(paths, policy, crm=True)
    as_of = args.as_of
    if as_of is None:  # the as-of rule (orchestration.cycle): the CRM's today
        from datetime import UTC, datetime

        crm_today = _import("orchestration.cycle", "crm_today", "the as-of rule")
        as_of = crm_today(policy.crm.kind, paths.crm_db, datetime.now(UTC))
    progress = _progress(args)
    with _detail(args, paths, "run") as detail:
        summary = _run_cycle(
            args, as_of, progress, dry_run=args.dry_run, override=args.override_guard
        )
    _show_summary(summary)
    if args.dry_run and getattr(summary, "success", False):
        _show_plan(summary)
    print(detail.footer())
    return _exit_code(summary)


def _show_plan(summary: Any) -> None:
    """A dry run's plan: counts, the first rows, and the CSV with every row."""
    from books_cli.plan import plan_rows, render_plan, write_csv

    try:
        rows = plan_rows(summary.warehouse, summary.run_id)
    except Exception as exc:  # the cycle is done; say why its plan is not shown, keep the rest
        log.debug("reading the plan failed", exc_info=True)
        print(
            f"dry-run plan: not shown ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})"
        )
        return
    csv_path = summary.warehouse.parent / "plans" / f"dry-run-{summary.run_id}.csv"
    print("\n".join(render_plan(rows, write_csv(rows, csv_path))))


def cmd_demo(args: argparse.Namespace) -> int:
    paths, policy = _prepare(args)
    _preflight(paths, policy, crm=False)  # the demo makes its local CRM if there is none
    run_demo = _import("orchestration.runner", "run_demo", "the demo runner")
    progress = _progress(args)
    with _detail(args, paths, "demo") as detail, _engine(args, paths) as run_paths:
        summary = run_demo(
            progress,
            paths=run_paths,
            as_of=args.as_of,
            accounts=args.accounts,
            reps=args.reps,
            seed=args.seed,
        )
    _show_summary(summary)
    print(f"local CRM: {paths.crm_db}")
    print(detail.footer())
    return _exit_code(getattr(summary, "cycle", summary))


def cmd_explain(args: argparse.Namespace) -> int:
    from orchestration.runner import analytics_path
    from warehouse.explain import ExplainError, explain_account

    paths, _ = _prepare(args)
    try:
        lines = explain_account(analytics_path(paths.warehouse), args.account_id)
    except ExplainError as exc:
        raise UserError(str(exc)) from None
    print("\n".join(lines))
    return EXIT_OK


def cmd_local_crm_serve(args: argparse.Namespace) -> int:
    paths, _ = _prepare(args)
    if not paths.crm_db.exists():
        raise UserError(f"{paths.crm_db} does not exist; create it with `books generate`")
    serve = _import("local_crm.server", "serve", "the local CRM server")
    print(f"local CRM on http://{args.host}:{args.port} ({paths.crm_db})", file=sys.stderr)
    serve(paths.crm_db, args.host, args.port)
    return EXIT_OK


def cmd_ui(args: argparse.Namespace) -> int:
    paths, _ = _prepare(args)
    # dagster.yaml with the `duckdb_writer` pool limit, the same home the runner uses.
    ensure_dagster_home = _import("orchestration.runner", "ensure_dagster_home", "the runner")
    ensure_dagster_home(paths.dagster_home)
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster) if dagster.exists() else "dagster",
        "dev",
        "-m",
        "orchestration.definitions",
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    try:
        return subprocess.call(command, cwd=paths.root, env=os.environ.copy())
    except FileNotFoundError:
        raise UserError(
            "`dagster` is not installed in this environment; run `make setup`"
        ) from None


# --- policy lab (simulation/) -------------------------------------------------------------------
def cmd_lab(args: argparse.Namespace) -> int:
    """`books twin` / `books simulate` (simulation.commands); prints the lines they return."""
    commands = _import("simulation.commands", "make_twin", "the policy lab")
    if args.lab_command == "twin":
        lines = commands(args)
    else:
        run = _import("simulation.commands", "run_simulation", "the policy lab")
        lines = run(args, (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True)))
    print("\n".join(lines))
    return EXIT_OK


# --- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--policy",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="policy file (default: $BOOKS_POLICY or books.yml at the repo root)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also show Dagster's and dbt's detail on the console (it always goes to the log "
        "file whose path is printed), and log at debug level",
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines"
    )

    parser = _Parser(
        prog="books",
        parents=[common],
        description="dynamic-books: warehouse-native dynamic book management for B2B sales.",
        epilog="Paths: BOOKS_CRM_DB, BOOKS_WAREHOUSE, BOOKS_LANDING (defaults under data/).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="generate a world if none, run one cycle",
        description=f"Generate a {DEMO_ACCOUNTS:,}-account, {DEMO_REPS}-rep world in the local "
        "CRM if none exists, run one books cycle in-process (guard overridden: launch day), "
        "publish the analytics file and print a summary.",
    )
    demo.add_argument(
        "--as-of",
        type=_date,
        help=f"as-of date (default: the existing CRM's clock, else {DEMO_AS_OF})",
    )
    demo.add_argument(
        "--accounts",
        type=_positive,
        default=DEMO_ACCOUNTS,
        metavar="N",
        help=f"accounts of a new world (default {DEMO_ACCOUNTS:,}; ignored if a CRM exists)",
    )
    demo.add_argument(
        "--reps",
        type=_positive,
        default=DEMO_REPS,
        metavar="M",
        help=f"reps of a new world (default {DEMO_REPS})",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=DEMO_SEED,
        metavar="S",
        help=f"random seed of a new world (default {DEMO_SEED}); the same seed, the same world",
    )
    demo.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default=None,
        help="where dbt builds: the policy's warehouse.engine (default), or spark on a loopback "
        "Spark cluster the demo starts and stops (needs make setup-spark and Java 17)",
    )
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser(
        "run",
        parents=[common],
        help="run one books cycle for an as-of date",
        description="Ingest, decide and write back for one as-of date.",
    )
    run.add_argument(
        "--as-of",
        type=_date,
        default=None,
        metavar="DATE",
        help="YYYY-MM-DD (default: the CRM's today: the local CRM's clock, else today in UTC)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="plan only: no CRM writes and the published analytics file is left as it is; "
        "prints the plan (counts by change kind and by user, the first rows) and a CSV of it",
    )
    run.add_argument(
        "--override-guard",
        action="store_true",
        help="write even if the blast-radius guard blocks the plan (e.g. launch day)",
    )
    run.add_argument(
        "--accept-row-drop",
        action="append",
        metavar="OBJECT",
        help="accept this run's row-count drop of a CRM object (e.g. Account; repeatable); "
        "needs --by and --reason, recorded in ops.row_drop_overrides",
    )
    run.add_argument(
        "--reconcile",
        action="store_true",
        help="also compare every CRM id and SystemModstamp with the warehouse and load rows the "
        "incremental extract missed (what the daily reconciliation schedule does)",
    )
    run.add_argument("--by", metavar="WHO", help="who accepts the row-count drop")
    run.add_argument("--reason", metavar="WHY", help="why the row-count drop is intended")
    run.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another live cycle holding the warehouse or its Dagster pool "
        "slot, saying what it waits for (default: exit at once with its name; a step held back "
        "mid-run waits at least 300 s); a killed cycle's lease and pool slots are taken over "
        "at once",
    )
    run.set_defaults(func=cmd_run)

    explain = sub.add_parser(
        "explain",
        parents=[common],
        help="one account's story: state, scores, decisions, why the last run chose it or not",
        description="Print an account's current state and owner, its scores with their parts, "
        "every decision about it, and what the last run that considered it decided and why. "
        "Reads the analytics file, so it works while a cycle runs.",
    )
    explain.add_argument("account_id", metavar="ACCOUNT_ID", help="the Salesforce Account Id")
    explain.set_defaults(func=cmd_explain)

    gen = sub.add_parser(
        "generate",
        parents=[common],
        help="generate a world in the local CRM",
        description="Generate a synthetic world (reps, accounts, activities, "
        "signals, landing files) into the local CRM.",
    )
    gen.add_argument(
        "--accounts", type=_positive, required=True, metavar="N", help="accounts to generate"
    )
    gen.add_argument("--reps", type=_positive, required=True, metavar="M", help="reps to generate")
    gen.add_argument(
        "--seed", type=int, required=True, metavar="S", help="random seed (same seed, same world)"
    )
    gen.add_argument(
        "--months",
        type=_positive,
        default=DEMO_MONTHS,
        help=f"months of history ({DEMO_MONTHS})",
    )
    gen.add_argument(
        "--as-of",
        type=_date,
        default=DEMO_AS_OF,
        metavar="DATE",
        help=f"the world's 'today' (default {DEMO_AS_OF})",
    )
    gen.add_argument("--force", action="store_true", help="replace an existing local CRM")
    gen.set_defaults(func=cmd_generate)

    crm = sub.add_parser("local-crm", parents=[common], help="the local Salesforce-compatible CRM")
    crm_sub = crm.add_subparsers(dest="crm_command", metavar="COMMAND", required=True)
    serve = crm_sub.add_parser(
        "serve",
        parents=[common],
        help="serve the local CRM over HTTP",
        description="Serve the local CRM's Salesforce API subset.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8765, help="port to listen on (8765)")
    serve.set_defaults(func=cmd_local_crm_serve)

    val = sub.add_parser(
        "validate-policy",
        parents=[common],
        help="check a policy file",
        description="Validate a policy file; exit 2 naming the bad field.",
    )
    val.add_argument("file", nargs="?", help="policy file (default: the --policy file)")
    val.set_defaults(func=cmd_validate_policy)

    ui = sub.add_parser(
        "ui",
        parents=[common],
        help="open the Dagster UI (dagster dev)",
        description="Run `dagster dev` on orchestration.definitions.",
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    ui.add_argument("--port", type=_port, default=3000, help="port to listen on (3000)")
    ui.set_defaults(func=cmd_ui)

    from simulation.commands import add_commands  # the policy lab: twin, simulate

    add_commands(sub, _positive, _date)
    for name in ("twin", "simulate"):
        sub.choices[name].set_defaults(func=cmd_lab)
    return parser


# --- errors -------------------------------------------------------------------------------------
def _user_error_message(exc: BaseException) -> str | None:
    """A one-line message if `exc` (or its cause chain) is a user-fixable problem."""
    from_chain: BaseException | None = exc
    seen: set[int] = set()
    while from_chain is not None and id(from_chain) not in seen:
        seen.add(id(from_chain))
        text = str(from_chain).strip().splitlines()[0] if str(from_chain).strip() else ""
        module = type(from_chain).__module__ or ""
        if isinstance(from_chain, UserError) or type(from_chain).__name__ == "PreflightError":
            return text
        if type(from_chain).__name__ == "PolicyError":
            return f"invalid policy: {text}"
        if type(from_chain).__name__ in ("WarehouseBusyError", "PoolBusyError"):
            return text
        if "duckdb" in module and "lock" in str(from_chain).lower():
            return (
                f"the warehouse is in use by another process ({text}); wait for it to finish "
                "or close it"
            )
        if "sqlite3" in module and "locked" in text.lower():
            return f"the local CRM database is locked by another process ({text})"
        if isinstance(from_chain, FileNotFoundError):
            name = from_chain.filename or text
            return f"file not found: {name}"
        from_chain = from_chain.__cause__ or from_chain.__context__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.quiet = getattr(args, "quiet", False)
    args.policy = getattr(args, "policy", None)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("books: interrupted", file=sys.stderr)
        return 130
    except Unavailable as exc:
        print(f"books: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        message = _user_error_message(exc)
        if message is None or getattr(args, "verbose", False):
            raise
        print(f"books: error: {message}", file=sys.stderr)
        return EXIT_USER


if __name__ == "__main__":
    sys.exit(main())
