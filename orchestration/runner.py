"""Run one books cycle in-process (the `books run` and `books demo` commands).

The runner is the edge where a person's request becomes a Dagster run: it loads the policy,
derives the run id from (as-of date, policy version, attempt), takes the warehouse's
single-writer lease for the whole cycle, serves the local CRM in-process when the policy says
`crm.kind: local`, executes the `books_cycle` job in this process with a progress line per step
(its last step publishes the analytics file), and summarises what happened from the run's events
and the warehouse.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

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
    crm_clock_date,
    cycle_tags,
    make_run_id,
)
from orchestration.dbt_parse import dbt_manifest_path
from orchestration.definitions import JOB_NAME, CrmEndpoint, build_definitions
from orchestration.demo import DEMO_ACCOUNTS, DEMO_AS_OF, DEMO_MONTHS, DEMO_REPS, DEMO_SEED
from orchestration.pools import (
    PoolBusyError,
    free_slots_of_ended_runs,
    job_pools,
    release_dead_run,
    wait_for_blocked_step,
    wait_for_pools,
    wait_for_warehouse_file,
)
from orchestration.publish import ANALYTICS_KEY
from orchestration.report import report_path
from policy import BooksPaths, load_policy, policy_version, resolve_paths
from warehouse.lease import LeaseInfo, acquire, read_lease
from warehouse.publish import analytics_path

__all__ = ["analytics_path", "crm_clock_date", "run_cycle", "run_demo"]

log = logging.getLogger(__name__)

Progress = Callable[..., None]

# How long a run waits for a killed run's leftover child (its dbt build) to release the
# warehouse file: a dbt build of a large warehouse takes minutes, not hours.
DEAD_RUN_CHILD_WAIT_SECONDS = 1800.0
# How long a step held back mid-run at a pool's limit waits, unless `--wait` says longer: another
# live run took the slot between two steps (e.g. a scheduled run that then finds the warehouse
# lease taken and fails at once), so a short wait rides it out instead of failing the cycle.
BLOCKED_STEP_WAIT_SECONDS = 300.0
INGEST_PREFIXES = ("salesforce", "files")
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


@dataclass
class CycleSummary:
    """What one cycle did, for the CLI to print and tests to check."""

    as_of_date: date
    run_id: str
    dagster_run_id: str
    policy_version: str
    success: bool
    dry_run: bool
    warehouse: Path
    report: Path | None
    analytics: Path | None = None
    rows_ingested: dict[str, int] = field(default_factory=dict)
    accounts_by_state: dict[str, int] = field(default_factory=dict)
    decisions_by_kind: dict[str, int] = field(default_factory=dict)
    write_back: dict[str, Any] = field(default_factory=dict)
    failed_steps: list[str] = field(default_factory=list)
    failure_reasons: dict[str, str] = field(default_factory=dict)  # step: first line of its error
    failed_checks: dict[str, str] = field(default_factory=dict)  # asset:check: what failed
    reconciliation: dict[str, str] = field(default_factory=dict)  # object: found / fixed
    count_gaps: dict[str, str] = field(default_factory=dict)  # object: CRM vs warehouse rows
    ui_hint: str = "open the Dagster UI with: .venv/bin/books ui  (then http://127.0.0.1:3000)"

    def _failed_check_lines(self) -> list[str]:
        """One line per distinct failure (several assets' checks often fail for one reason)."""
        by_reason: dict[str, list[str]] = {}
        for name, what in self.failed_checks.items():
            by_reason.setdefault(what, []).append(name)
        return [
            f"  failed check{'s' if len(names) > 1 else ''} {', '.join(names)}: {what}"
            for what, names in by_reason.items()
        ]

    def render(self) -> str:
        """The summary a person reads: a few lines, each figure named (`name value, ...`)."""
        status = "succeeded" if self.success else "FAILED at " + ", ".join(self.failed_steps)
        lines = [
            f"books cycle as of {self.as_of_date} {status}"
            + (" (dry run: nothing written to the CRM)" if self.dry_run else ""),
            *(f"  {step}: {reason}" for step, reason in self.failure_reasons.items()),
            *self._failed_check_lines(),
            f"run id {self.run_id}  policy {self.policy_version[:12]}  "
            f"dagster run {self.dagster_run_id}",
            *_inline("rows ingested", self.rows_ingested),
            *_inline("accounts by state", self.accounts_by_state),
            *_inline("decisions by kind", self.decisions_by_kind),
            *_inline("write-back", self.write_back),
        ]
        if self.reconciliation:
            lines += _inline("reconciliation (rows missing or stale / loaded)", self.reconciliation)
        if self.count_gaps:
            lines += _inline("WARNING: CRM and warehouse row counts differ", self.count_gaps)
            lines.append("  the next reconciliation (daily, or books run --reconcile) loads them")
        lines += [f"warehouse: {self.warehouse}"]
        if self.analytics:
            lines.append(
                f"analytics: {self.analytics}  (public tables of this run; open it read-only, "
                "also while a cycle runs)"
            )
        elif self.dry_run:
            lines.append("analytics: not published by a dry run (it keeps the last real run's)")
        if self.report:
            lines.append(f"report:    {self.report}")
        lines.append(self.ui_hint)
        return "\n".join(lines)


def _inline(title: str, values: dict[str, Any], width: int = 100) -> list[str]:
    """`title: name value, name value, ...`, wrapped between items: short and greppable."""
    if not values:
        return [f"{title}: none"]
    items = [f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in values.items()]
    lines = [f"{title}: {items[0]}"]
    for item in items[1:]:
        if len(lines[-1]) + len(item) + 2 > width:
            lines[-1] += ","
            lines.append(f"  {item}")
        else:
            lines[-1] += f", {item}"
    return lines


@dataclass
class DemoSummary:
    generated: bool
    crm_db: Path
    world: Any
    cycle: CycleSummary
    accounts: int = DEMO_ACCOUNTS
    reps: int = DEMO_REPS

    def render(self) -> str:
        head = (
            f"generated a {self.accounts:,}-account, {self.reps}-rep world in {self.crm_db}"
            if self.generated
            else f"using the existing local CRM {self.crm_db} (as of its clock)"
        )
        return head + "\n" + self.cycle.render()


def _say(progress: Progress | None, message: str) -> None:
    log.info(message)
    if progress is not None:
        progress(message)


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


def execute_job(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    dagster_run_id: str,
    tags: dict[str, str],
    *,
    step_wait_seconds: float,
    progress: Progress | None = None,
) -> tuple[dg.ExecuteInProcessResult, dict[str, Any]]:
    """Execute `job` in this process; a progress line per step; what the summary needs.

    A step blocked by a pool limit in the middle of the run (another live run took the slot
    between two steps) is waited for, saying which run holds it, for `step_wait_seconds`; then
    the run stops, failed, with that step's reason naming the holder.
    """
    collected: dict[str, Any] = {"failed": [], "reasons": {}, "checks": {}, "materialized": {}}

    def on_blocked(step_key: str, pool: str) -> None:
        try:
            wait_for_blocked_step(
                instance, pool, step_key, dagster_run_id,
                wait_seconds=step_wait_seconds, say=lambda line: _say(progress, line),
            )  # fmt: skip
        except PoolBusyError as exc:
            collected["failed"].append(step_key)
            collected["reasons"][step_key] = str(exc)
            _say(progress, f"step {step_key} FAILED")
            raise  # out of Dagster's executor loop: the run ends, failed

    instance.add_event_listener(dagster_run_id, _step_listener(progress, collected))
    instance.add_event_listener(dagster_run_id, _blocked_listener(on_blocked))
    result = job.execute_in_process(
        instance=instance, run_id=dagster_run_id, tags=tags, raise_on_error=False
    )
    return result, collected


def _blocked_listener(on_blocked: Callable[[str, str], None]) -> Callable[[Any], None]:
    """An event-log listener: `on_blocked(step, pool)` when Dagster holds a step back at a pool's
    limit (it says so once, then waits with no end)."""

    def on_event(entry: Any) -> None:
        event = entry.dagster_event
        if event is None or event.event_type_value != "ENGINE_EVENT":
            return
        if "blocked by limit for pool" in (event.message or ""):
            pool = event.event_specific_data.metadata["pool"]
            on_blocked(event.step_key, getattr(pool, "value", pool))

    return on_event


def _step_listener(progress: Progress | None, summary: dict[str, Any]) -> Callable[[Any], None]:
    """An event-log listener: one progress line per finished step (its time and rows), and the
    numbers the summary needs. Dagster's own event lines go to its loggers, not to `progress`."""
    started: dict[str, float] = {}
    rows: dict[str, int] = {}
    assets: dict[str, int] = {}

    def finished(step: str, what: str, timestamp: float) -> str:
        took = f" in {timestamp - started[step]:.1f}s" if step in started else ""
        count = (
            f", {rows[step]:,} row{'' if rows[step] == 1 else 's'}" if step in rows
            else f", {assets[step]} assets" if assets.get(step, 0) > 1 else ""
        )  # fmt: skip
        return f"step {step} {what}{took}{count}"

    def on_event(entry: Any) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            started[event.step_key] = entry.timestamp
            log.info("step %s started", event.step_key)
        elif kind == "STEP_SUCCESS":
            _say(progress, finished(event.step_key, "done", entry.timestamp))
        elif kind == "STEP_FAILURE":
            summary["failed"].append(event.step_key)
            error = getattr(event.step_failure_data, "error", None)
            message = (getattr(error, "message", "") or "").strip()
            if message:
                summary["reasons"][event.step_key] = message.splitlines()[0]
            _say(progress, finished(event.step_key, "FAILED", entry.timestamp))
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                text = (evaluation.description or "").strip().splitlines()
                name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                summary["checks"][name] = text[0] if text else "failed"
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            key = materialization.asset_key
            metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
            summary["materialized"][key] = metadata
            assets[event.step_key] = assets.get(event.step_key, 0) + 1
            count = _row_count(metadata)
            if count is not None:
                rows[event.step_key] = rows.get(event.step_key, 0) + count

    return on_event


def _row_count(metadata: dict[str, Any]) -> int | None:
    """The rows an asset materialised, if its metadata says (ingest and dbt name it apart)."""
    for name in ("rows_loaded", "rows_ingested", "dagster/row_count"):
        value = metadata.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _rows_ingested(materialized: dict[dg.AssetKey, dict[str, Any]]) -> dict[str, int]:
    out = {}
    for key, metadata in sorted(materialized.items(), key=lambda kv: kv[0].to_user_string()):
        if key.path[0] not in INGEST_PREFIXES:
            continue
        count = _row_count(metadata)
        if count is not None:
            out["/".join(key.path)] = count
    return out


def _ingest_checks(
    materialized: dict[dg.AssetKey, dict[str, Any]],
) -> tuple[dict[str, str], dict[str, str]]:
    """(reconciliation found/fixed, count gaps) per CRM object, from the extract's metadata."""
    found, gaps = {}, {}
    for key, meta in sorted(materialized.items(), key=lambda kv: kv[0].to_user_string()):
        name = "/".join(key.path)
        if "reconcile_found" in meta:
            found[name] = f"{meta['reconcile_found']} / {meta['reconcile_fixed']}"
        if "count_gap" in meta:
            crm = meta["crm_rows"]
            gaps[name] = f"CRM {crm:,}, warehouse {crm - meta['count_gap']:,}"
    return found, gaps


def _warehouse_counts(warehouse: Path, run_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Accounts by state and this run's decisions by kind, read back from the warehouse."""
    if not warehouse.exists():
        return {}, {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        states: dict[str, int] = {}
        for accounts in ("marts.accounts", "intermediate.int_accounts_classified"):
            if accounts in tables:
                states = dict(
                    con.execute(
                        f"select state, count(*) from {accounts} group by state order by 2 desc"
                    ).fetchall()
                )
                break
        kinds: dict[str, int] = {}
        if "decisions.dec_run_decisions" in tables:  # this run's, a dry run's too
            kinds = dict(
                con.execute(
                    "select decision_kind, count(*) from decisions.dec_run_decisions "
                    "where run_id = ? group by 1 order by 2 desc",
                    [run_id],
                ).fetchall()
            )
    return states, kinds


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
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    holder = f"books cycle {run_id}"
    dagster_run_id = str(uuid.uuid4())
    previous = read_lease(paths.warehouse)
    with acquire(paths.warehouse, holder, wait_seconds=lease_wait_seconds, run_key=dagster_run_id):
        _say(progress, f"books cycle as of {as_of}: run {run_id}, policy {version[:12]}")
        dead = _dead_holder(previous, dagster_run_id)
        if step_wait_seconds is None:
            step_wait_seconds = max(lease_wait_seconds, BLOCKED_STEP_WAIT_SECONDS)
        start = _Start(dagster_run_id, dead, lease_wait_seconds, paths.warehouse, step_wait_seconds)
        summary = _run_locked(
            as_of, run_id, version, policy.crm.kind, dry_run, override_guard, progress, paths,
            instance, start, extra_tags,
        )  # fmt: skip
    _say(progress, f"books cycle {'done' if summary.success else 'failed'}")
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
            _say(progress, line)
        wait_for_warehouse_file(
            start.warehouse,
            wait_seconds=max(start.pool_wait_seconds, DEAD_RUN_CHILD_WAIT_SECONDS),
            say=lambda message: _say(progress, message),
        )
    for line in free_slots_of_ended_runs(instance, pools):
        _say(progress, line)
    wait_for_pools(
        instance,
        pools,
        start.dagster_run_id,
        wait_seconds=start.pool_wait_seconds,
        say=lambda message: _say(progress, message),
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
        _say(progress, "loading definitions (dbt manifest is parsed if stale)")
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

    states, kinds = _warehouse_counts(paths.warehouse, run_id)
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
    for name in ("planned_changes", "conflicts", "api_calls", *per_object):
        if name in write_back_meta:
            write_back[name] = write_back_meta[name]
    report = report_path(str(paths.warehouse), as_of.isoformat())
    published = collected["materialized"].get(ANALYTICS_KEY, {}).get("path")
    reconciliation, gaps = _ingest_checks(collected["materialized"])
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
        rows_ingested=_rows_ingested(collected["materialized"]),
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
        _say(progress, f"using the existing local CRM {paths.crm_db} (as of {as_of})")
    else:
        from local_crm.generator import generate_world

        as_of = as_of or DEMO_AS_OF
        _say(progress, f"generating a {accounts:,}-account, {reps}-rep world as of {as_of}")
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


def summary_json(summary: CycleSummary) -> str:
    """The summary as JSON (for scripts and the benchmarks)."""
    data = {k: v for k, v in summary.__dict__.items()}
    return json.dumps(data, default=str, sort_keys=True)
