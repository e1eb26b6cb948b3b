"""Cadences (R17): schedules for distribution and retrieval, sensors for signals and returns,
and the daily reconciliation of the CRM extract (`ingest.reconcile`).

Each cadence is switchable in books.yml (`cadences.<name>.enabled`). The cron strings are read
when the definitions load (Dagster needs them then); the on/off switch is read again on every
tick, so a switched-off cadence yields a SkipReason and never a run.

With the local CRM (`crm.kind: local`: the demo and tests) every schedule and sensor starts
stopped, whatever books.yml says: opening the UI on the demo world never starts a run by itself;
a person starts a cadence in the UI (Automation) when they want it. With Salesforce an enabled
cadence starts running. Every run a cadence requests is as of the CRM's today
(`orchestration.cycle.crm_today`: the local CRM's clock, else the tick's UTC date), in its tags.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import dagster as dg

from orchestration.cycle import (
    TAG_ACCOUNT_IDS,
    TAG_AS_OF_DATE,
    TAG_RECONCILE,
    TAG_RUN_ID,
    TAG_SIGNAL_IDS,
    TAG_TRIGGERED_AT,
    PolicyResource,
    cycle_tags,
    make_run_id,
)
from orchestration.resources import CrmOpener
from policy import Policy

log = logging.getLogger(__name__)

# The most ids a single out-of-cycle run carries in its tags; the rest wait for the next tick.
MAX_IDS_PER_RUN = 500


class SoqlClient(Protocol):
    """What a sensor needs from the CRM connection (crm.salesforce.SalesforceConnection)."""

    def query_all_pages(self, soql: str, include_deleted: bool = False) -> Iterable[list[dict]]: ...


@dataclass(frozen=True)
class ModstampCursor:
    """Position in a CRM object's change stream: the last SystemModstamp and the ids seen at it.

    Several rows can share one SystemModstamp; keeping their ids lets the next query use `>=`
    without routing them twice.
    """

    modstamp: str | None = None
    ids: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> ModstampCursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(modstamp=data["modstamp"], ids=tuple(data.get("ids", ())))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"sensor cursor {raw!r} is not a modstamp cursor") from None

    def dumps(self) -> str:
        return json.dumps({"modstamp": self.modstamp, "ids": sorted(self.ids)}, sort_keys=True)


def changed_rows(
    client: SoqlClient, soql_object: str, where: str, cursor: ModstampCursor
) -> list[dict[str, Any]]:
    """Rows of `soql_object` matching `where`, changed at or after the cursor, oldest first."""
    conditions = [where] if where else []
    if cursor.modstamp:
        conditions.append(f"SystemModstamp >= {cursor.modstamp}")
    soql = f"SELECT Id, SystemModstamp FROM {soql_object}"
    if conditions:
        soql += " WHERE " + " AND ".join(f"({c})" for c in conditions)
    soql += " ORDER BY SystemModstamp, Id"
    rows = [row for page in client.query_all_pages(soql) for row in page]
    seen = set(cursor.ids)
    return [r for r in rows if not (r["SystemModstamp"] == cursor.modstamp and r["Id"] in seen)]


def advance(cursor: ModstampCursor, rows: Sequence[dict[str, Any]]) -> ModstampCursor:
    """The cursor after `rows` (ordered by SystemModstamp) have been handed to a run."""
    if not rows:
        return cursor
    last = rows[-1]["SystemModstamp"]
    at_last = {r["Id"] for r in rows if r["SystemModstamp"] == last}
    if last == cursor.modstamp:
        at_last |= set(cursor.ids)
    return ModstampCursor(modstamp=last, ids=tuple(sorted(at_last)))


def _modstamp_time(modstamp: str) -> datetime:
    """The moment of a SystemModstamp ('YYYY-MM-DDTHH:MM:SS.000+0000')."""
    return datetime.strptime(modstamp, "%Y-%m-%dT%H:%M:%S.%f%z")


def _enabled(policy: Policy, name: str) -> bool:
    return bool(getattr(policy.cadences, name).enabled)


def build_change_sensor(
    *,
    name: str,
    job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    soql_object: str,
    where: str,
    mode: str,
    ids_tag: str,
    interval_seconds: int,
    default_status: dg.DefaultSensorStatus,
    description: str,
) -> dg.SensorDefinition:
    """A sensor that requests one out-of-cycle run for the CRM rows changed since its cursor."""

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=default_status,
        description=description,
    )
    def _sensor(
        context: dg.SensorEvaluationContext,
        policy: PolicyResource,
        crm: dg.ResourceParam[CrmOpener],
    ) -> dg.SensorResult | dg.SkipReason:
        loaded = policy.policy
        if not _enabled(loaded, mode):
            return dg.SkipReason(f"cadence '{mode}' is switched off in {policy.resolved_path()}")
        ticked = datetime.now(UTC)  # the trigger: the write-back reports its latency from here
        cursor = ModstampCursor.parse(context.cursor)
        with crm.open() as client:
            rows = changed_rows(client, soql_object, where, cursor)
        if not cursor.modstamp and rows:
            # First tick: start from now; what already exists is the weekly cycle's job.
            start = advance(cursor, rows)
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"cursor initialised at {start.modstamp}"),
                cursor=start.dumps(),
            )
        if not rows:
            return dg.SkipReason(f"no {soql_object} changes since {cursor.modstamp}")
        batch = rows[:MAX_IDS_PER_RUN]
        new_cursor = advance(cursor, batch)
        as_of = crm.today(_modstamp_time(new_cursor.modstamp or ""))
        ids = sorted({r["Id"] for r in batch})
        run_id = make_run_id(as_of, policy.version, mode=mode, key=new_cursor.dumps())
        extra = {ids_tag: ",".join(ids), TAG_TRIGGERED_AT: ticked.isoformat()}
        tags = cycle_tags(as_of, run_id, mode=mode, extra=extra)
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{mode}:{new_cursor.dumps()}", tags=tags)],
            cursor=new_cursor.dumps(),
        )

    return _sensor


def build_cron_schedule(
    *,
    name: str,
    cadence: str,
    cron: str,
    job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    default_status: dg.DefaultScheduleStatus,
    description: str,
) -> dg.ScheduleDefinition:
    """A schedule that runs the cycle in `cadence` mode, as of the CRM's today at the tick."""

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=default_status,
        description=description,
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext,
        policy: PolicyResource,
        crm: dg.ResourceParam[CrmOpener],
    ) -> dg.RunRequest | dg.SkipReason:
        if not _enabled(policy.policy, cadence):
            return dg.SkipReason(f"cadence '{cadence}' is switched off in {policy.resolved_path()}")
        as_of = crm.today(context.scheduled_execution_time or datetime.now(UTC))
        run_id = make_run_id(as_of, policy.version, mode=cadence)
        return dg.RunRequest(
            run_key=f"{cadence}:{as_of.isoformat()}", tags=cycle_tags(as_of, run_id, mode=cadence)
        )

    return _schedule


def schedule_default_status(policy: Policy, enabled: bool) -> dg.DefaultScheduleStatus:
    """Running only for an enabled cadence on a real CRM; the local CRM's start stopped."""
    running = enabled and policy.crm.kind != "local"
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def build_cadences(
    policy: Policy, job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """All R17 cadences for the policy loaded at definitions time (stopped on a local CRM)."""
    cad = policy.cadences

    def schedule_status(on: bool) -> dg.DefaultScheduleStatus:
        return schedule_default_status(policy, on)

    def sensor_status(on: bool) -> dg.DefaultSensorStatus:
        running = schedule_default_status(policy, on) == dg.DefaultScheduleStatus.RUNNING
        return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED

    schedules = [
        build_cron_schedule(
            name="distribution_schedule",
            cadence="distribution",
            cron=cad.distribution.cron,
            job=job,
            default_status=schedule_status(cad.distribution.enabled),
            description="Top-off distribution (R6): fills open slots from the pool.",
        ),
        build_cron_schedule(
            name="retrieval_schedule",
            cadence="retrieval",
            cron=cad.retrieval.cron,
            job=job,
            default_status=schedule_status(cad.retrieval.enabled),
            description="Retrieval (R8): stale accounts go back to the pool and rest.",
        ),
    ]
    sensors = [
        build_change_sensor(
            name="hot_signals_sensor",
            job=job,
            soql_object="Signal__c",
            where="",
            mode="signals",
            ids_tag=TAG_SIGNAL_IDS,
            interval_seconds=cad.signals.interval_seconds,
            default_status=sensor_status(cad.signals.enabled),
            description="Signals (R7): routes accounts with new signals without waiting a week.",
        ),
        build_change_sensor(
            name="return_requests_sensor",
            job=job,
            soql_object="Account",
            where="Return_Requested__c != null",
            mode="returns",
            ids_tag=TAG_ACCOUNT_IDS,
            interval_seconds=cad.returns.interval_seconds,
            default_status=sensor_status(cad.returns.enabled),
            description="Returns (R9): applies reps' return requests on demand.",
        ),
    ]
    return schedules, sensors


RECONCILE_JOB_NAME = "books_reconcile"


def build_reconcile_job(
    selection: dg.AssetSelection,
) -> dg.UnresolvedAssetJobDefinition:
    """The CRM extract with reconciliation (run tag books/reconcile=true): no dbt, no write."""
    return dg.define_asset_job(
        RECONCILE_JOB_NAME,
        selection=selection,
        tags={TAG_RECONCILE: "true"},
        description="Extract the CRM, then compare every id and SystemModstamp with the "
        "warehouse and load what the incremental extract missed (ops.reconciliation).",
    )


def build_reconcile_schedule(
    policy: Policy, job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition
) -> dg.ScheduleDefinition:
    """`ingest.reconcile` in books.yml: daily by default; the on/off switch is read per tick."""
    on = policy.ingest.reconcile.enabled

    @dg.schedule(
        name="reconcile_schedule",
        cron_schedule=policy.ingest.reconcile.cron,
        job=job,
        execution_timezone="UTC",
        default_status=schedule_default_status(policy, on),
        description="Reconciliation: loads CRM rows committed too late for the extract's window.",
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext,
        policy: PolicyResource,
        crm: dg.ResourceParam[CrmOpener],
    ) -> dg.RunRequest | dg.SkipReason:
        if not policy.policy.ingest.reconcile.enabled:
            return dg.SkipReason(f"ingest.reconcile is switched off in {policy.resolved_path()}")
        as_of = crm.today(context.scheduled_execution_time or datetime.now(UTC))
        return dg.RunRequest(
            run_key=f"reconcile:{as_of.isoformat()}",
            tags={
                TAG_AS_OF_DATE: as_of.isoformat(),
                TAG_RUN_ID: f"{as_of.isoformat()}-reconcile-{policy.version[:10]}",
                TAG_RECONCILE: "true",
            },
        )

    return _schedule
