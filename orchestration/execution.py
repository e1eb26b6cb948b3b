"""Executing the cycle's job in this process: a progress line per finished step, the figures
the summary needs, and a wait (then a clear failure) for a step held back at a pool's limit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dagster as dg

from orchestration.pools import PoolBusyError, wait_for_blocked_step
from orchestration.summary import row_count

log = logging.getLogger(__name__)

Progress = Callable[..., None]


def say(progress: Progress | None, message: str) -> None:
    log.info(message)
    if progress is not None:
        progress(message)


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
                wait_seconds=step_wait_seconds, say=lambda line: say(progress, line),
            )  # fmt: skip
        except PoolBusyError as exc:
            collected["failed"].append(step_key)
            collected["reasons"][step_key] = str(exc)
            say(progress, f"step {step_key} FAILED")
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
            say(progress, finished(event.step_key, "done", entry.timestamp))
        elif kind == "STEP_FAILURE":
            summary["failed"].append(event.step_key)
            error = getattr(event.step_failure_data, "error", None)
            message = (getattr(error, "message", "") or "").strip()
            if message:
                summary["reasons"][event.step_key] = message.splitlines()[0]
            say(progress, finished(event.step_key, "FAILED", entry.timestamp))
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
            count = row_count(metadata)
            if count is not None:
                rows[event.step_key] = rows.get(event.step_key, 0) + count

    return on_event
