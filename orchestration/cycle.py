"""What every asset of one books cycle agrees on: the as-of date, the run id, the policy.

A cycle is one Dagster run of `books_cycle`. Its as-of date and books run id travel as run tags
(set by the runner, the schedules and the sensors), so every step of the run, in any process,
sees the same values without reading the wall clock or the environment.

The as-of rule, the same for every way a run starts (`books run`/`books demo`, a schedule, a
sensor, the launchpad): a date given explicitly (`--as-of`, the `books/as_of_date` tag) wins;
otherwise the CRM's today (`crm_today`): for the local CRM its clock (the day its world is at),
for Salesforce the UTC date of the moment the run is requested. A run launched without the tag
gets it written onto the run by its first step, so the run's tags always show its date.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path

import dagster as dg

from policy import Policy, load_policy, policy_dbt_env, policy_version, resolve_paths

TAG_AS_OF_DATE = "books/as_of_date"
TAG_RUN_ID = "books/run_id"
TAG_MODE = "books/mode"  # full | distribution | retrieval | signals | returns
TAG_DRY_RUN = "books/dry_run"  # "true" | "false"
TAG_OVERRIDE_GUARD = "books/override_guard"  # "true" | "false"
TAG_SIGNAL_IDS = "books/signal_ids"  # comma-separated Signal__c ids (signals mode)
TAG_ACCOUNT_IDS = "books/account_ids"  # comma-separated Account ids (returns mode)
TAG_RECONCILE = "books/reconcile"  # "true": the extract also reconciles ids with the CRM
# When the trigger of an out-of-cycle run fired (a sensor's tick: ISO 8601, UTC); the write-back
# reports the latency from it to the CRM write (`trigger_latency_seconds`).
TAG_TRIGGERED_AT = "books/triggered_at"

MODES = ("full", "distribution", "retrieval", "signals", "returns")
DUCKDB_POOL = "duckdb_writer"


def make_run_id(
    as_of_date: date,
    policy_version_hash: str,
    attempt: int = 1,
    *,
    mode: str = "full",
    key: str = "",
) -> str:
    """A books run id that is the same for the same (as-of date, policy, attempt).

    Re-running a killed cycle reuses its id, so the write-back ledger recognises the changes it
    already applied; a deliberate second cycle for the same date passes attempt=2. Out-of-cycle
    runs (a schedule's mode, a sensor's cursor `key`) get ids of their own.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    parts = [as_of_date.isoformat(), policy_version_hash, str(attempt)]
    if mode != "full" or key:
        parts += [mode, key]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    label = "" if mode == "full" else f"{mode}-"
    return f"{as_of_date.isoformat()}-{label}{attempt}-{digest[:10]}"


def cycle_tags(
    as_of_date: date,
    run_id: str,
    *,
    mode: str = "full",
    dry_run: bool = False,
    override_guard: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The run tags that parameterise one cycle."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    tags = {
        TAG_AS_OF_DATE: as_of_date.isoformat(),
        TAG_RUN_ID: run_id,
        TAG_MODE: mode,
        TAG_DRY_RUN: str(dry_run).lower(),
        TAG_OVERRIDE_GUARD: str(override_guard).lower(),
    }
    tags.update(extra or {})
    return tags


def _run_tags(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> dict[str, str]:
    return dict(context.run.tags)


def crm_clock_date(crm_db: str | Path) -> date:
    """The local CRM's clock date: the day its world is at (generated for, or advanced to)."""
    from local_crm.db import CrmStore

    return CrmStore(Path(crm_db)).clock.today()


def crm_today(crm_kind: str, crm_db: str | Path | None, moment: datetime) -> date:
    """The as-of date of a run requested at `moment` without an explicit date (module doc):
    the local CRM's clock, or the UTC date of `moment` for Salesforce."""
    if crm_kind == "local":
        if not crm_db:
            raise ValueError("the local CRM's clock needs its database path (local_db_path)")
        return crm_clock_date(crm_db)
    return utc_date(moment)


def as_of_date_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> date:
    """The run's as-of date: the `books/as_of_date` tag, else the as-of rule (`crm_today`) at
    the run's creation, written onto the run as its tag so later steps and people see it.

    The fallback covers a run launched by hand from the launchpad; the CRM and policy are
    resolved as the definitions are (BOOKS_* environment or the repo's defaults).
    """
    raw = _run_tags(context).get(TAG_AS_OF_DATE)
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"run tag {TAG_AS_OF_DATE}={raw!r} is not a date YYYY-MM-DD") from None
    record = context.instance.get_run_record_by_id(context.run_id)
    created = record.create_timestamp if record is not None else None
    if created is None:
        raise ValueError(f"run {context.run_id} has no {TAG_AS_OF_DATE} tag and no create time")
    paths = resolve_paths()
    as_of = crm_today(load_policy(paths.policy).crm.kind, paths.crm_db, created)
    context.instance.add_run_tags(context.run_id, {TAG_AS_OF_DATE: as_of.isoformat()})
    return as_of


def flag_of(context: dg.AssetExecutionContext | dg.OpExecutionContext, tag: str) -> bool:
    """A boolean run tag ('true'/'false'); absent means false, anything else is an error."""
    raw = _run_tags(context).get(tag, "false").strip().lower()
    if raw not in ("true", "false"):
        raise ValueError(f"run tag {tag}={raw!r} must be 'true' or 'false'")
    return raw == "true"


def mode_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    mode = _run_tags(context).get(TAG_MODE, "full")
    if mode not in MODES:
        raise ValueError(f"run tag {TAG_MODE}={mode!r} must be one of {', '.join(MODES)}")
    return mode


class PolicyResource(dg.ConfigurableResource):
    """The validated books.yml. `path` empty means: resolve at run time (BOOKS_POLICY or repo)."""

    path: str = ""

    def resolved_path(self) -> str:
        return self.path or str(resolve_paths().policy)

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.resolved_path())

    @property
    def version(self) -> str:
        return policy_version(self.policy)

    def run_id_for(
        self, context: dg.AssetExecutionContext | dg.OpExecutionContext, as_of_date: date
    ) -> str:
        """The `books/run_id` tag, else the deterministic id for (as-of, policy, attempt 1)."""
        return _run_tags(context).get(TAG_RUN_ID) or make_run_id(as_of_date, self.version)

    def dbt_env(self) -> dict[str, str]:
        """The environment every dbt invocation reads the policy from (never `--vars`). The
        run's as-of date, id and mode go to ops.run_context, so it stays the same between runs
        and dbt keeps its partial parse."""
        return policy_dbt_env(self.policy)


def cycle_ids_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> tuple[str, ...]:
    """The Signal__c ids (signals mode) or Account ids (returns mode) the run's tags carry."""
    tags = _run_tags(context)
    raw = tags.get(TAG_SIGNAL_IDS, "") + "," + tags.get(TAG_ACCOUNT_IDS, "")
    return tuple(sorted({i.strip() for i in raw.split(",") if i.strip()}))


def triggered_at_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> datetime | None:
    """The moment the run's trigger fired (`books/triggered_at`), if the run has one."""
    raw = _run_tags(context).get(TAG_TRIGGERED_AT)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"run tag {TAG_TRIGGERED_AT}={raw!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def dbt_cycle_mode(mode: str) -> str:
    """The cycle mode dbt sees (ops.run_context): the scheduled top-off distribution and
    retrieval runs build everything like the weekly cycle ('full'); sensors' runs keep theirs."""
    return mode if mode in ("signals", "returns") else "full"


def utc_date(moment: datetime) -> date:
    """The UTC calendar date of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()
