"""What one cycle did, read from its Dagster events and its warehouse: the summary `books run`
and `books demo` print, and the benchmarks and tests read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from orchestration.demo import DEMO_ACCOUNTS, DEMO_REPS

INGEST_PREFIXES = ("salesforce", "files")


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


def row_count(metadata: dict[str, Any]) -> int | None:
    """The rows an asset materialised, if its metadata says (ingest and dbt name it apart)."""
    for name in ("rows_loaded", "rows_ingested", "dagster/row_count"):
        value = metadata.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def rows_ingested_by_object(materialized: dict[dg.AssetKey, dict[str, Any]]) -> dict[str, int]:
    out = {}
    for key, metadata in sorted(materialized.items(), key=lambda kv: kv[0].to_user_string()):
        if key.path[0] not in INGEST_PREFIXES:
            continue
        count = row_count(metadata)
        if count is not None:
            out["/".join(key.path)] = count
    return out


def ingest_checks(
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


def warehouse_counts(warehouse: Path, run_id: str) -> tuple[dict[str, int], dict[str, int]]:
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


def summary_json(summary: CycleSummary) -> str:
    """The summary as JSON (for scripts and the benchmarks)."""
    data = {k: v for k, v in summary.__dict__.items()}
    return json.dumps(data, default=str, sort_keys=True)
