"""Plan: turn the sync model's rows into per-account changes with deterministic change keys.

A change is the set of fields one run wants to write on one account, with the values read this
run (`before`) and the desired values (`after`). Its key hashes the run, the account and the
canonical (sorted, JSON) field/value set, so re-planning the same run yields the same keys and
the ledger can refuse to apply anything twice. Only fields on the static allowlist
(`local_crm.schema.WRITABLE_ACCOUNT_FIELDS`) may ever be planned.
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

from local_crm.schema import WRITABLE_ACCOUNT_FIELDS
from reverse_etl.guards import GuardContext, blast_radius, load_guard_context
from reverse_etl.policy import WritePolicy

log = logging.getLogger(__name__)

SYNC_MODEL = "sync.sync_salesforce__accounts"
INPUT_SCHEMA = {
    "account_id": pl.Utf8,
    "field": pl.Utf8,
    "before_value": pl.Utf8,
    "after_value": pl.Utf8,
}


class PlanError(ValueError):
    """The sync rows cannot be planned safely (unknown field, duplicate row, bad id)."""


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


def change_key(run_id: str, account_id: str, after: dict[str, str | None]) -> str:
    """Deterministic id of one change: hash(run, account, sorted field set + desired values)."""
    payload = canonical_json({"run_id": run_id, "account_id": account_id, "after": after})
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Change:
    """The fields one run writes on one account; `before` is what this run read."""

    change_key: str
    run_id: str
    account_id: str
    before: dict[str, str | None]
    after: dict[str, str | None]
    is_move: bool = False  # owner goes from a rep to a pool user (retrieval or return)

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

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocked_reasons)

    def rows(self) -> list[tuple[str, str, str | None, str | None]]:
        """(account_id, field, before, after) per planned field, sorted: the printable plan."""
        return sorted(
            (c.account_id, f, c.before[f], c.after[f]) for c in self.changes for f in c.fields
        )


def build_plan(
    rows: pl.DataFrame,
    run_id: str,
    *,
    policy: WritePolicy | Any = None,
    context: GuardContext | None = None,
) -> Plan:
    """Group (account_id, field, before_value, after_value) rows into changes and run the guards.

    Raises PlanError naming the row for a field outside the allowlist or a duplicated field.
    """
    policy = WritePolicy.from_policy(policy)
    context = context or GuardContext()
    missing = set(INPUT_SCHEMA) - set(rows.columns)
    if missing:
        raise PlanError(f"sync rows lack columns {sorted(missing)}; got {rows.columns}")
    by_account: dict[str, tuple[dict[str, str | None], dict[str, str | None]]] = {}
    for account_id, field_name, before, after in rows.select(list(INPUT_SCHEMA)).iter_rows():
        if not account_id or len(str(account_id)) not in (15, 18):
            raise PlanError(f"sync row has a malformed account_id {account_id!r} ({field_name})")
        if field_name not in WRITABLE_ACCOUNT_FIELDS:
            raise PlanError(
                f"sync row for account {account_id} writes field {field_name!r}, which is not "
                f"on the write allowlist {WRITABLE_ACCOUNT_FIELDS}"
            )
        before_c, after_c = canonical_value(before), canonical_value(after)
        entry = by_account.setdefault(str(account_id), ({}, {}))
        if field_name in entry[1]:
            raise PlanError(f"sync rows hold field {field_name} twice for account {account_id}")
        if before_c == after_c:
            log.debug("skipping %s.%s: desired equals read value", account_id, field_name)
            continue
        entry[0][field_name] = before_c
        entry[1][field_name] = after_c
    changes = []
    for account_id in sorted(by_account):
        before, after = by_account[account_id]
        if not after:
            continue
        before = {k: before[k] for k in sorted(before)}
        after = {k: after[k] for k in sorted(after)}
        is_move = (
            "OwnerId" in after
            and after["OwnerId"] in context.pool_owner_ids
            and before["OwnerId"] not in context.pool_owner_ids
        )
        changes.append(
            Change(
                change_key(run_id, account_id, after), run_id, account_id, before, after, is_move
            )
        )
    moves, owned, reasons = blast_radius(changes, context, policy)
    return Plan(run_id, tuple(changes), moves, owned, tuple(reasons), policy)


def load_sync_rows(warehouse_path: str | Path, run_id: str | None = None) -> pl.DataFrame:
    """Read the sync model and unpivot it to (account_id, field, before_value, after_value).

    The model is wide: `account_id`, and per writable field a desired column named as dlt names
    the field (`owner_id`) and its read value prefixed `before_` (`before_owner_id`). A field
    whose desired column is absent is not written by this product.
    """
    with _connect(warehouse_path, read_only=True) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'sync' and table_name = 'sync_salesforce__accounts'"
        ).fetchall()
        if not exists[0][0]:
            raise PlanError(f"{warehouse_path} has no {SYNC_MODEL}; run the dbt sync models first")
        wide = con.sql(f"select * from {SYNC_MODEL}").pl()
    if run_id is not None and "run_id" in wide.columns and wide.height:
        runs = sorted(set(wide["run_id"].cast(pl.Utf8).to_list()))
        if runs != [run_id]:
            raise PlanError(
                f"{SYNC_MODEL} was built for run(s) {runs}, not {run_id!r}; rebuild it first"
            )
    return sync_rows_from_wide(wide)


def snake(field_name: str) -> str:
    """dlt's snake_case of a Salesforce field name (`Book_Status__c` -> `book_status_c`)."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", field_name).lower()
    return re.sub(r"_+", "_", text)


def sync_rows_from_wide(wide: pl.DataFrame) -> pl.DataFrame:
    """Unpivot the wide sync model (`x`, `before_x` per field) into the long planner input."""
    if set(INPUT_SCHEMA) <= set(wide.columns):
        return wide.select([pl.col(c).cast(t) for c, t in INPUT_SCHEMA.items()])
    if "account_id" not in wide.columns:
        raise PlanError(f"{SYNC_MODEL} has no account_id column; columns: {wide.columns}")
    frames = []
    for field_name in WRITABLE_ACCOUNT_FIELDS:
        col = snake(field_name)
        if col not in wide.columns:
            continue
        before_col = f"before_{col}"
        if before_col not in wide.columns:
            raise PlanError(f"{SYNC_MODEL} has {col} but no {before_col} (the value read)")
        frames.append(
            wide.select(
                pl.col("account_id").cast(pl.Utf8),
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
        raise PlanError(f"{SYNC_MODEL} has no writable field columns; columns: {wide.columns}")
    return pl.concat(frames)


def plan_write_back(
    warehouse_path: str | Path,
    run_id: str,
    *,
    policy: Any = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> Plan:
    """Build this run's plan from the warehouse, run the guards and store it in the ledger.

    Makes no CRM call: this is also the dry run (`books run --dry-run`).
    """
    from reverse_etl import ledger

    policy = WritePolicy.from_policy(policy)
    rows = load_sync_rows(warehouse_path, run_id)
    context = load_guard_context(warehouse_path, policy, exclude_run=run_id)
    plan = build_plan(rows, run_id, policy=policy, context=context)
    ledger.store_plan(warehouse_path, plan, clock or ledger.utc_now)
    if plan.is_blocked:
        log.warning("write-back plan %s is blocked: %s", run_id, "; ".join(plan.blocked_reasons))
    log.info(
        "planned %d changes (%d moves of %d owned accounts) for run %s",
        len(plan.changes),
        plan.moves,
        plan.owned_accounts,
        run_id,
    )
    return plan


def _connect(warehouse_path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse_path), read_only=read_only)
