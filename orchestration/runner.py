"""Run one books cycle in-process (the `books run` and `books demo` commands).

The runner is the edge where a person's request becomes a Dagster run: it loads the policy,
derives the run id from (as-of date, policy version, attempt), takes the warehouse's
single-writer lease for the whole cycle, serves the local CRM in-process when the policy says
`crm.kind: local`, executes the `books_cycle` job in this process (execution.py: a progress
line per step; its last step publishes the analytics file), and summarises what happened from
the run's events and the warehouse (summary.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from contracts.overrides import (
    TAG_ACCEPT_REASON,
    TAG_ACCEPT_ROW_DROP,
    TAG_ACCEPTED_BY,
    parse_objects,
)
from orchestration.cycle import (
    TAG_ACCOUNT_IDS,
    TAG_MODE,
    TAG_RECONCILE,
    TAG_SIGNAL_IDS,
    TAG_TRIGGERED_AT,
    crm_clock_date,
    cycle_tags,
    make_run_id,
)
from orchestration.dbt_parse import dbt_manifest_path
from orchestration.definitions import JOB_NAME, CrmEndpoint, build_definitions
from orchestration.demo import DEMO_ACCOUNTS, DEMO_AS_OF, DEMO_MONTHS, DEMO_REPS, DEMO_SEED
from orchestration.execution import Progress, execute_job, say
from orchestration.instance import ensure_dagster_home, open_instance
from orchestration.pools import (
    free_slots_of_ended_runs,
    job_pools,
    release_dead_run,
    wait_for_pools,
    wait_for_warehouse_file,
)
from orchestration.publish import ANALYTICS_KEY
from orchestration.report import report_path
from orchestration.summary import (
    CycleSummary,
    DemoSummary,
    ingest_checks,
    rows_ingested_by_object,
    summary_json,
    warehouse_counts,
)
from policy import BooksPaths, load_policy, policy_version, resolve_paths
from warehouse.lease import LeaseInfo, acquire, read_lease
from warehouse.publish import analytics_path

__all__ = [
    "CycleSummary",
    "DemoSummary",
    "analytics_path",
    "crm_clock_date",
    "ensure_dagster_home",
    "execute_job",
    "open_instance",
    "run_cycle",
    "run_demo",
    "summary_json",
]

log = logging.getLogger(__name__)

# How long a run waits for a killed run's leftover child (its dbt build) to release the
# warehouse file: a dbt build of a large warehouse takes minutes, not hours.
DEAD_RUN_CHILD_WAIT_SECONDS = 1800.0
# How long a step held back mid-run at a pool's limit waits, unless `--wait` says longer: another
# live run took the slot between two steps (e.g. a scheduled run that then finds the warehouse
# lease taken and fails at once), so a short wait rides it out instead of failing the cycle.
BLOCKED_STEP_WAIT_SECONDS = 300.0


@contextmanager
def _crm_endpoint(kind: str, crm_db: Path) -> Iterator[CrmEndpoint | None]:
    """Serve the local CRM in-process for the whole cycle (one server, not one per step)."""
    if kind != "local":
        yield None
        return
    if not crm_db.exists():
        raise FileNotFoundError(
            f"local CRM database {crm_db} does not exist; create it with `books generate` "
            "or run `books demo`"
        )
    from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, start_in_process

    server = start_in_process(crm_db)
    try:
        yield CrmEndpoint(server.url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    finally:
        server.stop()


def run_cycle(
    as_of: date,
    *,
    dry_run: bool = False,
    override_guard: bool = False,
    progress: Progress | None = None,
    attempt: int = 1,
    paths: BooksPaths | None = None,
    instance: dg.DagsterInstance | None = None,
    lease_wait_seconds: float = 0.0,
    accept_row_drop: tuple[str, ...] = (),
    accepted_by: str = "",
    accept_reason: str = "",
    reconcile: bool = False,
    mode: str = "full",
    ids: tuple[str, ...] = (),
    key: str = "",
    step_wait_seconds: float | None = None,
    triggered_at: datetime | None = None,
) -> CycleSummary:
    """Run `books_cycle` once, in this process, for `as_of`; never reads the wall clock.

    The same (as-of, policy, attempt) always gets the same books run id, so re-running a cycle
    that was killed half way lets the write-back ledger skip what was already applied. The whole
    cycle holds the warehouse lease, keyed by the Dagster run id so the run's steps join it: a
    second cycle (another `books run`, or a scheduled Dagster run) fails with
    `warehouse.lease.WarehouseBusyError` naming the holder (after `lease_wait_seconds`).
    A previous holder that died (a killed `books run`) has its Dagster run marked failed and its
    pool slots freed; a pool slot held by a live run is waited for, saying so, for the same
    `lease_wait_seconds`, then `orchestration.pools.PoolBusyError` names it. A step held back
    at a pool's limit in the middle of the run waits `step_wait_seconds` (default: the larger
    of `lease_wait_seconds` and `BLOCKED_STEP_WAIT_SECONDS`), saying so, then the run stops,
    failed, with that step's reason naming the holder.
    `accept_row_drop`: objects whose row-count drop this run accepts (recorded with
    `accepted_by` and `accept_reason` in ops.row_drop_overrides; see contracts.overrides).
    `reconcile`: the extract also compares every CRM id and SystemModstamp with the warehouse
    and loads what it missed (ingest.reconcile), as the daily reconciliation schedule does.
    `mode`, `ids`, `key`: what a schedule or sensor would launch (orchestration.cadences): a
    `distribution`/`retrieval` run, or a `signals`/`returns` run for these Signal__c/Account ids
    with the sensor cursor `key` in its run id (the policy lab replays the cadences this way).
    `triggered_at`: when the trigger of such a run fired (a sensor's tick); the write-back
    reports the latency from it to the CRM write (`trigger_latency_seconds`).
    """
    paths = paths or resolve_paths()
    policy = load_policy(paths.policy)
    version = policy_version(policy)
    run_id = make_run_id(as_of, version, attempt, mode=mode, key=key)
    extra_tags = _row_drop_tags(accept_row_drop, accepted_by, accept_reason)
    if mode != "full":
        extra_tags[TAG_MODE] = mode
    if ids:
        extra_tags[TAG_SIGNAL_IDS if mode == "signals" else TAG_ACCOUNT_IDS] = ",".join(ids)
    if reconcile:
        extra_tags[TAG_RECONCILE] = "true"
    if triggered_at is not None:
        moment = triggered_at if triggered_at.tzinfo else triggered_at.replace(tzinfo=UTC)
        extra_tags[TAG_TRIGGERED_AT] = moment.isoformat()
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    holder = f"books cycle {run_id}"
    dagster_run_id = str(uuid.uuid4())
    previous = read_lease(paths.warehouse)
    with acquire(paths.warehouse, holder, wait_seconds=lease_wait_seconds, run_key=dagster_run_id):
        say(progress, f"books cycle as of {as_of}: run {run_id}, policy {version[:12]}")
        dead = _dead_holder(previous, dagster_run_id)
        if step_wait_seconds is None:
            step_wait_seconds = max(lease_wait_seconds, BLOCKED_STEP_WAIT_SECONDS)
        start = _Start(dagster_run_id, dead, lease_wait_seconds, paths.warehouse, step_wait_seconds)
        summary = _run_locked(
            as_of, run_id, version, policy.crm.kind, dry_run, override_guard, progress, paths,
            instance, start, extra_tags,
        )  # fmt: skip
    say(progress, f"books cycle {'done' if summary.success else 'failed'}")
    return summary


@dataclass(frozen=True)
class _Start:
    """How this cycle's Dagster run starts: its id, a dead predecessor to clean up, pool wait."""

    dagster_run_id: str
    dead_run: tuple[str, str] | None  # (Dagster run id, why it is dead)
    pool_wait_seconds: float
    warehouse: Path
    step_wait_seconds: float = 0.0


def _dead_holder(previous: LeaseInfo | None, dagster_run_id: str) -> tuple[str, str] | None:
    """The Dagster run of the lease holder this cycle took over from, if its process is gone.

    Called once the lease is ours: a previous run-keyed holder either released it (its run
    ended; nothing to clean) or died (we took the stale lease over).
    """
    if previous is None or not previous.run_key or previous.run_key == dagster_run_id:
        return None
    if previous.host == socket.gethostname():
        try:
            os.kill(previous.pid, 0)
            return None  # still alive: it released the lease normally
        except ProcessLookupError:
            return previous.run_key, f"pid {previous.pid} of {previous.holder!r} is gone"
        except PermissionError:
            return None
    return previous.run_key, f"the lease of {previous.holder!r} on {previous.host} expired"


def _prepare_pools(
    instance: dg.DagsterInstance, job: dg.JobDefinition, start: _Start, progress: Progress | None
) -> None:
    """Free a dead predecessor's pool slots (and wait for its leftover child to release the
    warehouse file) and those of ended runs, then wait for live holders."""
    pools = job_pools(job)
    if start.dead_run is not None:
        line = release_dead_run(instance, *start.dead_run)
        if line:
            say(progress, line)
        wait_for_warehouse_file(
            start.warehouse,
            wait_seconds=max(start.pool_wait_seconds, DEAD_RUN_CHILD_WAIT_SECONDS),
            say=lambda message: say(progress, message),
        )
    for line in free_slots_of_ended_runs(instance, pools):
        say(progress, line)
    wait_for_pools(
        instance,
        pools,
        start.dagster_run_id,
        wait_seconds=start.pool_wait_seconds,
        say=lambda message: say(progress, message),
    )


def _row_drop_tags(objects: tuple[str, ...], by: str, reason: str) -> dict[str, str]:
    """The run tags of a row-drop override; who and why are required with any object."""
    names = parse_objects(objects)
    if not names:
        return {}
    if not (by.strip() and reason.strip()):
        raise ValueError("accepting a row-count drop needs who (--by) and why (--reason)")
    return {
        TAG_ACCEPT_ROW_DROP: ",".join(names),
        TAG_ACCEPTED_BY: by.strip(),
        TAG_ACCEPT_REASON: reason.strip(),
    }


def _run_locked(
    as_of: date,
    run_id: str,
    version: str,
    crm_kind: str,
    dry_run: bool,
    override_guard: bool,
    progress: Progress | None,
    paths: BooksPaths,
    instance: dg.DagsterInstance | None,
    start: _Start,
    extra_tags: dict[str, str],
) -> CycleSummary:
    """Execute the job and read back what it did (the caller holds the warehouse lease)."""
    with _crm_endpoint(crm_kind, paths.crm_db) as endpoint:
        say(progress, "loading definitions (dbt manifest is parsed if stale)")
        defs = build_definitions(paths, crm_endpoint=endpoint)
        job = defs.resolve_job_def(JOB_NAME)
        if instance is None:
            instance = open_instance(paths.dagster_home)
        _prepare_pools(instance, job, start, progress)
        tags = cycle_tags(
            as_of, run_id, dry_run=dry_run, override_guard=override_guard, extra=extra_tags
        )
        result, collected = execute_job(
            job, instance, start.dagster_run_id, tags,
            step_wait_seconds=start.step_wait_seconds, progress=progress,
        )  # fmt: skip

    states, kinds = warehouse_counts(paths.warehouse, run_id)
    write_back_meta = next(
        (m for k, m in collected["materialized"].items() if k.path[-1].endswith("write_back")),
        {},
    )
    outcomes = write_back_meta.get("outcomes")
    write_back = dict(outcomes) if isinstance(outcomes, dict) else {}
    # Per synced object (account_*, lead_*: orchestration/write_back.py) after the totals.
    per_object = sorted(
        k for k in write_back_meta if k.endswith(("_planned_changes", "_conflicts"))
    )
    for name in (
        "planned_changes",
        "conflicts",
        "api_calls",
        "trigger_latency_seconds",
        *per_object,
    ):
        if name in write_back_meta:
            write_back[name] = write_back_meta[name]
    report = report_path(str(paths.warehouse), as_of.isoformat())
    published = collected["materialized"].get(ANALYTICS_KEY, {}).get("path")
    reconciliation, gaps = ingest_checks(collected["materialized"])
    return CycleSummary(
        as_of_date=as_of,
        run_id=run_id,
        dagster_run_id=start.dagster_run_id,
        policy_version=version,
        success=result.success,
        dry_run=dry_run,
        warehouse=paths.warehouse,
        report=report if report.exists() else None,
        analytics=Path(published) if published else None,
        rows_ingested=rows_ingested_by_object(collected["materialized"]),
        accounts_by_state=states,
        decisions_by_kind=kinds,
        write_back=write_back,
        failed_steps=collected["failed"],
        failure_reasons=collected["reasons"],
        failed_checks=collected["checks"],
        reconciliation=reconciliation,
        count_gaps=gaps,
    )


def run_demo(
    progress: Progress | None = None,
    *,
    paths: BooksPaths | None = None,
    as_of: date | None = None,
    accounts: int = DEMO_ACCOUNTS,
    reps: int = DEMO_REPS,
    seed: int = DEMO_SEED,
    months: int = DEMO_MONTHS,
) -> DemoSummary:
    """Generate the demo world if the local CRM has none, then run one cycle as of its date.

    The as-of date: `as_of` if given, else the demo date for a new world, else the existing
    local CRM's clock. The guard is overridden: the demo is launch day, when the first
    distribution moves more accounts than any weekly run would.
    """
    paths = paths or resolve_paths()
    generated = False
    world = None
    if paths.crm_db.exists():
        as_of = as_of or crm_clock_date(paths.crm_db)
        say(progress, f"using the existing local CRM {paths.crm_db} (as of {as_of})")
    else:
        from local_crm.generator import generate_world

        as_of = as_of or DEMO_AS_OF
        say(progress, f"generating a {accounts:,}-account, {reps}-rep world as of {as_of}")
        paths.crm_db.parent.mkdir(parents=True, exist_ok=True)
        paths.landing.mkdir(parents=True, exist_ok=True)
        parse = _parse_dbt_meanwhile(paths)
        try:
            world = generate_world(
                paths.crm_db,
                accounts=accounts,
                reps=reps,
                seed=seed,
                months=months,
                as_of=as_of,
                landing_dir=paths.landing,
                policy_path=paths.policy,
                progress=progress,
            )
        finally:
            parse.join()  # never leave dbt running behind a failed generation
        generated = True
    cycle = run_cycle(as_of, dry_run=False, override_guard=True, progress=progress, paths=paths)
    return DemoSummary(generated, paths.crm_db, world, cycle, accounts=accounts, reps=reps)


def _parse_dbt_meanwhile(paths: BooksPaths) -> threading.Thread:
    """Start the `dbt parse` a fresh checkout needs (a subprocess, several seconds) while the
    world is generated, so the cycle finds the manifest ready. A failure is only logged here:
    the cycle parses again and raises it with dbt's message."""

    def parse() -> None:
        try:
            dbt_manifest_path(paths=paths)
        except Exception as exc:  # re-raised by the cycle's own parse
            log.warning("background dbt parse failed, the cycle will retry it: %s", exc)

    thread = threading.Thread(target=parse, name="dbt-parse", daemon=True)
    thread.start()
    return thread
