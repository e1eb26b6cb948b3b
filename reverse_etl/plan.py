"""Plan: turn the sync models' rows into per-record changes with deterministic change keys.

A change is the set of fields one run wants to write on one record of one CRM object (Account,
Lead), with the values read this run (`before`) and the desired values (`after`). Its key
hashes the run, the object, the record and the canonical (sorted, JSON) field/value set, so
re-planning the same run yields the same keys and the ledger can refuse to apply anything
twice. Each object has one sync model and a static field allowlist (`SYNC_OBJECTS`): only
those fields may ever be planned (a Lead only ever changes OwnerId).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from local_crm.schema import OBJECTS, WRITABLE_ACCOUNT_FIELDS
from reverse_etl.guards import (
    GuardContext,
    Hold,
    blast_radius,
    held_moves,
    load_guard_context,
    store_holds,
)
from reverse_etl.policy import WritePolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncObject:
    """One CRM object the write-back may change: its sync model, id column and field allowlist."""

    name: str  # Salesforce sObject API name
    model: str  # table in the warehouse schema `sync`
    id_column: str  # the model's record id column
    writable_fields: tuple[str, ...]

    @property
    def key_prefix(self) -> str:
        return OBJECTS[self.name].key_prefix

    @property
    def relation(self) -> str:
        return f"sync.{self.model}"


ACCOUNT = SyncObject("Account", "sync_salesforce__accounts", "account_id", WRITABLE_ACCOUNT_FIELDS)
# Leads follow their matched account's owner (R7 lead routing): nothing else on a Lead is ours.
LEAD = SyncObject("Lead", "sync_salesforce__leads", "lead_id", ("OwnerId",))
SYNC_OBJECTS: dict[str, SyncObject] = {o.name: o for o in (ACCOUNT, LEAD)}

INPUT_SCHEMA = {
    "sobject": pl.Utf8,
    "record_id": pl.Utf8,
    "field": pl.Utf8,
    "before_value": pl.Utf8,
    "after_value": pl.Utf8,
}


class PlanError(ValueError):
    """The sync rows cannot be planned safely (unknown object or field, duplicate row, bad id)."""


def canonical_value(value: Any) -> str | None:
    """One text form per value, so CRM JSON, warehouse types and the ledger compare equal."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text != "" else None


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the only form that is ever hashed or stored."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def change_key(run_id: str, sobject: str, record_id: str, after: dict[str, str | None]) -> str:
    """Deterministic id of one change: hash(run, object, record, sorted fields + values)."""
    payload = canonical_json(
        {"run_id": run_id, "sobject": sobject, "record_id": record_id, "after": after}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Change:
    """The fields one run writes on one record of `sobject`; `before` is what this run read."""

    change_key: str
    run_id: str
    sobject: str
    record_id: str
    before: dict[str, str | None]
    after: dict[str, str | None]
    # An Account's owner goes from a rep to a pool user (retrieval or return); never a Lead.
    is_move: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(sorted(self.after))


@dataclass(frozen=True)
class Plan:
    """Everything one run intends to write, plus why it may not be written."""

    run_id: str
    changes: tuple[Change, ...]
    moves: int = 0
    owned_accounts: int = 0
    blocked_reasons: tuple[str, ...] = ()
    policy: WritePolicy = field(default_factory=WritePolicy)
    held: tuple[Hold, ...] = ()  # moves of over-share books: kept planned, not sent (guards.py)

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocked_reasons)

    def rows(self) -> list[tuple[str, str, str, str | None, str | None]]:
        """(sobject, record_id, field, before, after) per planned field, sorted: the plan."""
        return sorted(
            (c.sobject, c.record_id, f, c.before[f], c.after[f])
            for c in self.changes
            for f in c.fields
        )

    def count_by_object(self) -> dict[str, int]:
        """Planned changes per CRM object (every sync object listed, zero included)."""
        return {name: sum(c.sobject == name for c in self.changes) for name in SYNC_OBJECTS}


def build_plan(
    rows: pl.DataFrame,
    run_id: str,
    *,
    policy: WritePolicy | Any = None,
    context: GuardContext | None = None,
) -> Plan:
    """Group (sobject, record_id, field, before_value, after_value) rows into changes; guard.

    Raises PlanError naming the row for an unknown object, a field outside the object's
    allowlist, an id of another object, or a duplicated field. Blast-radius guards count
    Account moves only: a Lead follows its account's owner and is never moved to the pool.
    """
    policy = WritePolicy.from_policy(policy)
    context = context or GuardContext()
    missing = set(INPUT_SCHEMA) - set(rows.columns)
    if missing:
        raise PlanError(f"sync rows lack columns {sorted(missing)}; got {rows.columns}")
    by_record: dict[tuple[str, str], tuple[dict[str, str | None], dict[str, str | None]]] = {}
    for sobject, record_id, field_name, before, after in rows.select(
        list(INPUT_SCHEMA)
    ).iter_rows():
        target = SYNC_OBJECTS.get(sobject)
        if target is None:
            raise PlanError(
                f"sync row for {record_id} names object {sobject!r}; the write-back only "
                f"writes {sorted(SYNC_OBJECTS)}"
            )
        if (
            not record_id
            or len(str(record_id)) not in (15, 18)
            or not str(record_id).startswith(target.key_prefix)
        ):
            raise PlanError(
                f"sync row has a malformed {sobject} id {record_id!r} ({field_name}); "
                f"{sobject} ids start with {target.key_prefix!r}"
            )
        if field_name not in target.writable_fields:
            raise PlanError(
                f"sync row for {sobject} {record_id} writes field {field_name!r}, which is not "
                f"on the {sobject} write allowlist {target.writable_fields}"
            )
        before_c, after_c = canonical_value(before), canonical_value(after)
        entry = by_record.setdefault((sobject, str(record_id)), ({}, {}))
        if field_name in entry[1] or field_name in entry[0]:
            raise PlanError(f"sync rows hold field {field_name} twice for {sobject} {record_id}")
        if before_c == after_c:
            log.debug(
                "skipping %s %s.%s: desired equals read value", sobject, record_id, field_name
            )
            entry[0][field_name] = before_c  # seen, so a duplicate row is still caught
            continue
        entry[0][field_name] = before_c
        entry[1][field_name] = after_c
    changes = []
    for sobject, record_id in sorted(by_record):
        before, after = by_record[(sobject, record_id)]
        if not after:
            continue
        before = {k: before[k] for k in sorted(after)}
        after = {k: after[k] for k in sorted(after)}
        is_move = (
            sobject == ACCOUNT.name
            and "OwnerId" in after
            and after["OwnerId"] in context.pool_owner_ids
            and before["OwnerId"] not in context.pool_owner_ids
        )
        key = change_key(run_id, sobject, record_id, after)
        changes.append(Change(key, run_id, sobject, record_id, before, after, is_move))
    moves, owned, reasons = blast_radius(changes, context, policy)
    held = held_moves(changes, context, policy)
    return Plan(run_id, tuple(changes), moves, owned, tuple(reasons), policy, held)


def load_sync_rows(
    warehouse_path: str | Path, run_id: str | None = None, *, spark_warehouse: Path | None = None
) -> pl.DataFrame:
    """Read every sync model (`SYNC_OBJECTS`) and unpivot it to the long planner input.

    Each model is wide: its id column, and per writable field a desired column named as dlt
    names the field (`owner_id`) and its read value prefixed `before_` (`before_owner_id`). A
    field whose desired column is absent is not written by this product. A missing model is an
    error: a silent gap would leave that object's decisions unwritten. With `spark_warehouse`
    (engine spark) the models are read from the tables Spark built there.
    """
    if spark_warehouse is not None:
        from warehouse.spark_raw import read_table

        try:
            wides = {n: read_table(spark_warehouse, o.relation) for n, o in SYNC_OBJECTS.items()}
        except FileNotFoundError as error:
            raise PlanError(str(error)) from error
        return _sync_rows(wides, run_id)
    with _connect(warehouse_path, read_only=True) as con:
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'sync'"
            ).fetchall()
        }
        absent = [o.relation for o in SYNC_OBJECTS.values() if o.model not in present]
        if absent:
            raise PlanError(f"{warehouse_path} has no {absent}; run the dbt sync models first")
        wides = {
            name: con.sql(f"select * from {o.relation}").pl() for name, o in SYNC_OBJECTS.items()
        }
    return _sync_rows(wides, run_id)


def _sync_rows(wides: dict[str, pl.DataFrame], run_id: str | None) -> pl.DataFrame:
    frames = []
    for name, wide in wides.items():
        target = SYNC_OBJECTS[name]
        if run_id is not None and "run_id" in wide.columns and wide.height:
            runs = sorted(set(wide["run_id"].cast(pl.Utf8).to_list()))
            if runs != [run_id]:
                raise PlanError(
                    f"{target.relation} was built for run(s) {runs}, not {run_id!r}; "
                    "rebuild it first"
                )
        frames.append(sync_rows_from_wide(wide, target))
    return pl.concat(frames)


def snake(field_name: str) -> str:
    """dlt's snake_case of a Salesforce field name (`Book_Status__c` -> `book_status_c`)."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", field_name).lower()
    return re.sub(r"_+", "_", text)


def sync_rows_from_wide(wide: pl.DataFrame, target: SyncObject = ACCOUNT) -> pl.DataFrame:
    """Unpivot one wide sync model (`x`, `before_x` per field) into the long planner input."""
    if target.id_column not in wide.columns:
        raise PlanError(
            f"{target.relation} has no {target.id_column} column; columns: {wide.columns}"
        )
    frames = []
    for field_name in target.writable_fields:
        col = snake(field_name)
        if col not in wide.columns:
            continue
        before_col = f"before_{col}"
        if before_col not in wide.columns:
            raise PlanError(f"{target.relation} has {col} but no {before_col} (the value read)")
        frames.append(
            wide.select(
                pl.lit(target.name).alias("sobject"),
                pl.col(target.id_column).cast(pl.Utf8).alias("record_id"),
                pl.lit(field_name).alias("field"),
                pl.col(before_col)
                .map_elements(canonical_value, return_dtype=pl.Utf8)
                .alias("before_value"),
                pl.col(col)
                .map_elements(canonical_value, return_dtype=pl.Utf8)
                .alias("after_value"),
            ).filter(pl.col("before_value").ne_missing(pl.col("after_value")))
        )
    if not frames:
        raise PlanError(
            f"{target.relation} has no writable field columns of {target.writable_fields}; "
            f"columns: {wide.columns}"
        )
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in INPUT_SCHEMA.items()])


def plan_write_back(
    warehouse_path: str | Path,
    run_id: str,
    *,
    policy: Any = None,
    clock: Callable[[], dt.datetime] | None = None,
    spark_warehouse: Path | None = None,
) -> Plan:
    """Build this run's plan from the warehouse, run the guards and store it in the ledger.

    Makes no CRM call: this is also the dry run (`books run --dry-run`). With
    `spark_warehouse` the sync models are read from Spark's tables; the ledger, the guards'
    inputs (raw CRM reads, earlier plans) and the outcome log stay in the DuckDB warehouse.
    """
    from reverse_etl import ledger

    policy = WritePolicy.from_policy(policy)
    rows = load_sync_rows(warehouse_path, run_id, spark_warehouse=spark_warehouse)
    context = load_guard_context(warehouse_path, policy, exclude_run=run_id)
    plan = build_plan(rows, run_id, policy=policy, context=context)
    ledger.store_plan(
        warehouse_path, plan, clock or ledger.utc_now, full_cycle=_is_full_cycle(warehouse_path)
    )
    store_holds(warehouse_path, run_id, plan.held, clock or ledger.utc_now)
    if plan.is_blocked:
        log.warning("write-back plan %s is blocked: %s", run_id, "; ".join(plan.blocked_reasons))
    log.info(
        "planned %d changes %s (%d moves of %d owned accounts) for run %s",
        len(plan.changes),
        plan.count_by_object(),
        plan.moves,
        plan.owned_accounts,
        run_id,
    )
    return plan


def _connect(warehouse_path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse_path), read_only=read_only)


def _is_full_cycle(warehouse_path: str | Path) -> bool:
    """False for an out-of-cycle run (ops.run_context cycle_mode signals / returns), which
    decides only some accounts; a warehouse without a run context plans full cycles."""
    with _connect(warehouse_path, read_only=True) as con:
        found = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'ops' and table_name = 'run_context'"
        ).fetchall()[0][0]
        if not found:
            return True
        modes = {r[0] for r in con.execute("select cycle_mode from ops.run_context").fetchall()}
    return not modes or modes == {"full"}
