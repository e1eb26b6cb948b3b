"""Apply a stored plan to the CRM: re-read, guard, write in batches, read back, log every row.

Rows are handled per CRM object (Account, Lead; one object per call), with the same guarantees.
Per chunk of up to 2,000 ledger rows: re-read the records (one sObject Collections retrieve); a
field someone else changed since this run's read is a conflict (reported, never overwritten); a
row already holding the desired values is `unchanged` (no call). The rest is written with sObject
Collections (200 per call, allOrNone=false) or, above `bulk_threshold`, one Bulk API 2.0 job;
results are matched by id. A read-back then confirms what the CRM says it saved. Per-record
transient errors are retried in later rounds with capped backoff (at most `max_attempts` sends
per record and pass: a re-run resends a change whatever it spent before); permanent errors are
`rejected` with the CRM's code and message.

Every ledger state is committed before and after each CRM call, so `recover` can finish any
run killed midway: writes set absolute values, and a row is re-sent only when the CRM still
holds the value read before it, so nothing is applied twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crm.retry import TRANSIENT_ERROR_CODES, Backoff, RetryPolicy
from reverse_etl import destination as dest
from reverse_etl import ledger
from reverse_etl.guards import ApiBudget, held_change_keys
from reverse_etl.ledger import (
    ACKED,
    APPLIED,
    CONFLICT,
    IN_FLIGHT,
    PLANNED,
    REJECTED,
    RETRY,
    SENDING,
    UNCHANGED,
    LedgerRow,
    Transition,
    utc_now,
)
from reverse_etl.plan import Plan
from reverse_etl.policy import WritePolicy

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Conflict:
    sobject: str
    record_id: str
    field: str
    before: str | None  # what this run read
    current: str | None  # what the CRM holds now
    after: str | None  # what this run wanted


@dataclass
class ApplyReport:
    """What one apply did; `outcomes` counts ledger rows of the run by final state."""

    run_id: str
    dry_run: bool = False
    planned: int = 0
    blocked_reasons: tuple[str, ...] = ()
    # Why changes were held back (per-book guard): they stay planned, unsent, unless overridden.
    held_reasons: tuple[str, ...] = ()
    held: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    write_calls: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # record id, code, message
    retried_records: int = 0
    readback_mismatches: int = 0  # this pass: writes answered saved but not found on read-back
    # The run's ledger at the end (all passes of this run id): ledger.run_summary.
    summary: dict[str, int] = field(default_factory=dict)
    still_failing_codes: dict[str, int] = field(default_factory=dict)
    stopped_by_budget: bool = False
    recovered: int = 0
    rounds: int = 0
    # (sobject, record_id, field, before, after) per planned field: the printable plan.
    plan_rows: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)
    outcomes_by_object: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocked_reasons)


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _keys(rows: Iterable[LedgerRow]) -> list[str]:
    return [r.change_key for r in rows]


def _by_object(rows: Sequence[LedgerRow]) -> list[tuple[str, list[LedgerRow]]]:
    """Rows grouped by CRM object, objects in name order (a call never mixes objects)."""
    groups: dict[str, list[LedgerRow]] = {}
    for row in rows:
        groups.setdefault(row.sobject, []).append(row)
    return sorted(groups.items())


class _Writer:
    """One pass of the outbox over some ledger rows; shared by apply and recovery."""

    def __init__(
        self,
        conn: dest.Connection,
        warehouse_path: str | Path,
        policy: WritePolicy,
        report: ApplyReport,
        sleep: Sleep,
        clock: Clock,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.conn = conn
        self.path = warehouse_path
        self.policy = policy
        self.report = report
        self.sleep = sleep
        self.clock = clock
        self.budget = ApiBudget(policy.api_budget_share)
        self.backoff = Backoff(
            RetryPolicy(
                base_delay=policy.retry_base_delay,
                max_delay=policy.retry_max_delay,
                seed=random.Random(report.run_id).randrange(2**31),
            ),
            sleep=sleep,
        )
        # Test hook: called with an event name at each crash-relevant point.
        self.on_event = on_event or (lambda _name: None)
        # Attempts each row had when this pass took it: the per-pass budget starts there.
        self.start: dict[str, int] = {}

    def _spent(self, row: LedgerRow) -> int:
        """Sends of `row` in this pass (its earlier runs' attempts do not count)."""
        return row.attempts - self.start.get(row.change_key, row.attempts)

    # -- helpers ---------------------------------------------------------------------------
    def _commit(self, items: list[Transition], *, log_retry: bool = False) -> None:
        ledger.transition(self.path, items, self.clock, log_retry=log_retry)

    def _allows(self, calls: int) -> bool:
        if self.budget.allows(self.conn.api_usage, calls):
            return True
        self.report.stopped_by_budget = True
        return False

    def _write_call(self) -> None:
        self.report.write_calls += 1

    # -- main loop -------------------------------------------------------------------------
    def run(self, rows: list[LedgerRow]) -> None:
        """Rounds until every row has an outcome, attempts run out, or the budget stops us."""
        for row in rows:
            self.start.setdefault(row.change_key, row.attempts)
        pending = rows
        rnd = 0
        while pending:
            if rnd:
                wait = self.backoff.delay(rnd)
                log.info("round %d: %d records to retry after %.2fs", rnd + 1, len(pending), wait)
                self.sleep(wait)
            self.report.rounds += 1
            finished = self._round(pending)
            if not finished:
                break
            pending = [
                r
                for r in ledger.rows(self.path, (RETRY,), change_keys=_keys(pending))
                if self._spent(r) < self.policy.max_attempts
            ]
            rnd += 1
            if rnd >= self.policy.max_attempts + 1:
                break
        left = ledger.rows(self.path, (RETRY,), change_keys=_keys(rows))
        if left:
            codes = sorted({str(r.error_code) for r in left})
            log.warning(
                "%d changes still failing after this pass (%s); a re-run of this date resends "
                "them, the next full run decides again and sends what it still wants",
                len(left),
                ", ".join(codes),
            )
            # Log the records that were attempted and are still failing, once, at run end.
            self._commit(
                [
                    Transition(r.change_key, RETRY, r.attempts, r.error_code, r.error_message)
                    for r in left
                ],
                log_retry=True,
            )

    def _round(self, pending: list[LedgerRow]) -> bool:
        """One pass over `pending`, object by object; False if the API budget stopped it."""
        for _sobject, rows in _by_object(pending):
            if not self._round_object(rows, len(rows) > self.policy.bulk_threshold):
                return False
        return True

    def _round_object(self, pending: list[LedgerRow], bulk: bool) -> bool:
        """One pass over rows of one object; False if the API budget stopped it."""
        to_send: list[LedgerRow] = []
        for chunk in _chunks(pending, self.policy.read_chunk):
            sendable = self._reread(list(chunk))
            if sendable is None:
                return False
            if not bulk:
                sent: list[LedgerRow] = []
                for batch in _chunks(sendable, self.policy.batch_size):
                    if not self._allows(2):  # the write and its read-back
                        break
                    self._send_collection(list(batch))
                    sent.extend(batch)
                if sent:  # confirm what was sent, even when the budget stops the chunk
                    self._read_back(sent)
                if len(sent) < len(sendable):
                    return False
            else:
                to_send.extend(sendable)
        if bulk and to_send:
            if not self._allows(8):
                return False
            self._send_bulk(to_send)
            for chunk in _chunks(to_send, self.policy.read_chunk):
                self._read_back(list(chunk))
        return True

    # -- re-read and classify --------------------------------------------------------------
    def _reread(self, chunk: list[LedgerRow]) -> list[LedgerRow] | None:
        """Re-read the CRM (one object) and settle rows needing no write; returns rows to send."""
        if not self._allows(1):
            return None
        fields = {f for r in chunk for f in r.after}
        current = dest.read_records(
            self.conn, chunk[0].sobject, [r.record_id for r in chunk], fields
        )
        settled: list[Transition] = []
        sendable: list[LedgerRow] = []
        for row in chunk:
            cur = current.get(dest.norm_id(row.record_id))
            if cur is None:
                # Not visible (deleted or unknown): send, so the CRM states its own error code.
                sendable.append(row)
                continue
            if all(cur[f] == row.after[f] for f in row.after):
                # Our own earlier send landed (attempted before) or nobody needed to change it.
                state = APPLIED if row.attempts else UNCHANGED
                settled.append(Transition(row.change_key, state, row.attempts))
                continue
            clashes = [
                dest_conflict
                for f in sorted(row.after)
                if cur[f] != row.before[f] and cur[f] != row.after[f]
                for dest_conflict in [
                    Conflict(row.sobject, row.record_id, f, row.before[f], cur[f], row.after[f])
                ]
            ]
            if clashes:
                self.report.conflicts.extend(clashes)
                detail = "; ".join(
                    f"{c.field}: read {c.before!r}, now {c.current!r}, wanted {c.after!r}"
                    for c in clashes
                )
                settled.append(
                    Transition(row.change_key, CONFLICT, row.attempts, "CONFLICT", detail)
                )
                continue
            if self._spent(row) >= self.policy.max_attempts:
                continue  # out of attempts this pass; stays `retry` for a re-run
            sendable.append(row)
        self._commit(settled)
        return sendable

    # -- writes ----------------------------------------------------------------------------
    def _mark_sending(self, batch: list[LedgerRow], job_id: str | None = None) -> None:
        self._commit(
            [Transition(r.change_key, SENDING, r.attempts + 1, None, None, job_id) for r in batch]
        )
        if any(r.attempts for r in batch):
            self.report.retried_records += sum(1 for r in batch if r.attempts)

    def _outcome(
        self, row: LedgerRow, result: dest.RecordOutcome | None, job_id: str | None = None
    ) -> Transition:
        attempts = row.attempts + 1
        if result is None:
            return Transition(
                row.change_key,
                RETRY,
                attempts,
                "NO_RESULT",
                "the CRM returned no result for this id",
                job_id,
            )
        if result.success:
            return Transition(row.change_key, ACKED, attempts, None, None, job_id)
        if result.code in TRANSIENT_ERROR_CODES:
            return Transition(row.change_key, RETRY, attempts, result.code, result.message, job_id)
        self.report.rejected.append((row.record_id, str(result.code), str(result.message)))
        return Transition(row.change_key, REJECTED, attempts, result.code, result.message, job_id)

    def _send_collection(self, batch: list[LedgerRow]) -> None:
        self._mark_sending(batch)
        self.on_event("collection_before_call")
        self._write_call()
        try:
            results = dest.update_collection(
                self.conn, batch[0].sobject, {dest.norm_id(r.record_id): r.after for r in batch}
            )
        except Exception as exc:  # noqa: BLE001 - the ledger must record any failure
            code = getattr(exc, "code", type(exc).__name__)
            log.warning("collections write of %d records failed: %s", len(batch), exc)
            self._commit(
                [
                    Transition(r.change_key, RETRY, r.attempts + 1, code, str(exc)[:500])
                    for r in batch
                ]
            )
            return
        self.on_event("collection_after_ack")
        self._commit([self._outcome(r, results.get(dest.norm_id(r.record_id))) for r in batch])

    def _send_bulk(self, rows: list[LedgerRow]) -> None:
        self._mark_sending(rows)
        self.on_event("bulk_before_create")
        try:
            self._write_call()
            job_id = dest.bulk_create_job(self.conn, rows[0].sobject)
            self._commit(
                [
                    Transition(r.change_key, SENDING, r.attempts + 1, None, None, job_id)
                    for r in rows
                ]
            )
            self.on_event("bulk_created")
            self._write_call()
            dest.bulk_upload_and_close(
                self.conn,
                job_id,
                dest.bulk_csv({dest.norm_id(r.record_id): r.after for r in rows}),
            )
            self.on_event("bulk_closed")
            state = dest.bulk_wait(
                self.conn,
                job_id,
                self.sleep,
                self.policy.bulk_poll_interval,
                self.policy.bulk_poll_max,
                on_poll=lambda _s: self.on_event("bulk_polling"),
            )
            if state != "JobComplete":
                raise RuntimeError(f"bulk job {job_id} ended {state}")
            results = dest.bulk_results(self.conn, job_id)
        except Exception as exc:  # noqa: BLE001 - unknown outcome: re-read decides next round
            code = getattr(exc, "code", "BULK_JOB_FAILED")
            log.warning("bulk write of %d records failed: %s", len(rows), exc)
            self._commit(
                [
                    Transition(r.change_key, RETRY, r.attempts + 1, code, str(exc)[:500])
                    for r in rows
                ]
            )
            return
        self.on_event("bulk_after_results")
        self._commit(
            [self._outcome(r, results.get(dest.norm_id(r.record_id)), job_id) for r in rows]
        )

    def _read_back(self, rows: list[LedgerRow]) -> None:
        """Confirm acked rows hold their values; a row that does not is re-queued and counted."""
        acked = ledger.rows(self.path, (ACKED,), change_keys=_keys(rows))
        if not acked:
            return
        current = dest.read_records(
            self.conn,
            acked[0].sobject,
            [r.record_id for r in acked],
            {f for r in acked for f in r.after},
        )
        items = []
        for row in acked:
            cur = current.get(dest.norm_id(row.record_id))
            if cur is not None and all(cur[f] == row.after[f] for f in row.after):
                items.append(Transition(row.change_key, APPLIED, row.attempts))
            else:
                self.report.readback_mismatches += 1
                items.append(
                    Transition(
                        row.change_key,
                        RETRY,
                        row.attempts,
                        "READBACK_MISMATCH",
                        f"reported saved but the CRM holds {cur!r}",
                        readback_mismatch=True,
                    )
                )
        self._commit(items)


def apply_plan(
    conn: dest.Connection,
    warehouse_path: str | Path,
    plan: Plan,
    *,
    dry_run: bool = False,
    override_guard: bool = False,
    sleep: Sleep = time.sleep,
    clock: Clock = utc_now,
    policy: WritePolicy | None = None,
    on_event: Callable[[str], None] | None = None,
) -> ApplyReport:
    """Write a stored plan to the CRM; a dry run or a blocked plan makes no CRM call."""
    # Held open for the whole apply: each ledger commit connects again and DuckDB then reuses
    # this process's open database (2 ms) instead of opening and checkpointing the file (47 ms
    # at M; 37% of the writer's time).
    with duckdb.connect(str(warehouse_path)):
        return _apply_plan(
            conn, warehouse_path, plan, dry_run, override_guard, sleep, clock, policy, on_event
        )


def _apply_plan(
    conn: dest.Connection,
    warehouse_path: str | Path,
    plan: Plan,
    dry_run: bool,
    override_guard: bool,
    sleep: Sleep,
    clock: Clock,
    policy: WritePolicy | None,
    on_event: Callable[[str], None] | None,
) -> ApplyReport:
    policy = policy or plan.policy
    report = ApplyReport(plan.run_id, dry_run=dry_run, planned=len(plan.changes))
    report.plan_rows = plan.rows()
    report.held_reasons = tuple(sorted({hold.reason for hold in plan.held}))
    report.held = len(plan.held)
    if dry_run:
        report.blocked_reasons = plan.blocked_reasons
        report.outcomes = {PLANNED: len(plan.changes)}
        report.outcomes_by_object = {
            name: {PLANNED: n} for name, n in plan.count_by_object().items() if n
        }
        return report
    if plan.is_blocked and not override_guard:
        report.blocked_reasons = plan.blocked_reasons
        report.outcomes = ledger.counts(warehouse_path, plan.run_id)
        report.outcomes_by_object = ledger.counts_by_object(warehouse_path, plan.run_id)
        report.summary, report.still_failing_codes = ledger.run_summary(
            warehouse_path, plan.run_id, frozenset(c.change_key for c in plan.changes)
        )
        log.error("write-back blocked for run %s: %s", plan.run_id, "; ".join(plan.blocked_reasons))
        return report
    calls0 = conn.request_count
    report.recovered = _recover(conn, warehouse_path, policy, report, sleep, clock, on_event)
    if plan.is_blocked:
        log.warning("override: writing blocked plan %s (%s)", plan.run_id, plan.blocked_reasons)
        ledger.mark_overridden(warehouse_path, plan.run_id, clock)
    held = held_change_keys(warehouse_path, plan.run_id, override=override_guard, clock=clock)
    report.held = len(held)
    if held:
        log.warning("write-back %s: %d changes held back: %s", plan.run_id, len(held),
                    "; ".join(report.held_reasons))  # fmt: skip
    else:
        report.held_reasons = ()
    writer = _Writer(conn, warehouse_path, policy, report, sleep, clock, on_event)
    writer.run(
        [
            row
            for row in ledger.rows(warehouse_path, (PLANNED, RETRY), run_id=plan.run_id)
            if row.change_key not in held
        ]
        + ledger.unfinished_of_earlier_runs(warehouse_path, plan.run_id)
    )
    ledger.log_held(warehouse_path, plan.run_id, held, clock)
    report.api_calls = conn.request_count - calls0
    report.outcomes = ledger.counts(warehouse_path, plan.run_id)
    report.outcomes_by_object = ledger.counts_by_object(warehouse_path, plan.run_id)
    report.summary, report.still_failing_codes = ledger.run_summary(
        warehouse_path, plan.run_id, held
    )
    log.info("write-back %s: %s, %d API calls", plan.run_id, report.summary, report.api_calls)
    return report


def recover(
    conn: dest.Connection,
    warehouse_path: str | Path,
    *,
    policy: WritePolicy | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = utc_now,
) -> int:
    """Finish rows a killed writer left `sending`/`acked`: settle bulk jobs, re-read, re-send.

    Returns how many rows were recovered. Safe to call at any time (no rows: no CRM call).
    """
    report = ApplyReport("recover")
    return _recover(conn, warehouse_path, policy or WritePolicy(), report, sleep, clock, None)


def _recover(
    conn: dest.Connection,
    warehouse_path: str | Path,
    policy: WritePolicy,
    report: ApplyReport,
    sleep: Sleep,
    clock: Clock,
    on_event: Callable[[str], None] | None,
) -> int:
    rows = ledger.rows(warehouse_path, IN_FLIGHT)
    if not rows:
        return 0
    log.warning("recovering %d write-back rows left in flight by an interrupted run", len(rows))
    for job_id in sorted({r.bulk_job_id for r in rows if r.bulk_job_id}):
        _settle_bulk_job(conn, job_id, policy, sleep)
    # Back to `retry` with the attempts already spent; the writer's re-read decides the rest.
    ledger.transition(
        warehouse_path,
        [
            Transition(
                r.change_key,
                RETRY,
                r.attempts,
                "INTERRUPTED",
                "writer stopped while this row was in flight",
            )
            for r in rows
        ],
        clock,
    )
    by_run: dict[str, list[LedgerRow]] = {}
    for row in ledger.rows(warehouse_path, (RETRY,), change_keys=_keys(rows)):
        by_run.setdefault(row.run_id, []).append(row)
    for run_id, run_rows in sorted(by_run.items()):
        sub = ApplyReport(run_id)
        _Writer(conn, warehouse_path, policy, sub, sleep, clock, on_event).run(run_rows)
        report.conflicts.extend(sub.conflicts)
        report.rejected.extend(sub.rejected)
        report.write_calls += sub.write_calls
    return len(rows)


def _settle_bulk_job(conn: dest.Connection, job_id: str, policy: WritePolicy, sleep: Sleep) -> None:
    """Let an interrupted bulk job finish (or abort it if never closed) before re-reading."""
    try:
        state = dest.bulk_state(conn, job_id)
        if state == "Open":
            dest.bulk_abort(conn, job_id)
            return
        if state not in ("JobComplete", "Failed", "Aborted"):
            dest.bulk_wait(conn, job_id, sleep, policy.bulk_poll_interval, policy.bulk_poll_max)
    except Exception as exc:  # noqa: BLE001 - the re-read that follows is the source of truth
        log.warning("could not settle bulk job %s: %s", job_id, exc)
