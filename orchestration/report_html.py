"""The run report: one self-contained HTML file with charts read from the warehouse marts.

Plain Python (duckdb + polars + matplotlib, no Dagster) so it can be rebuilt from any warehouse
file: `python -m orchestration.report_html data/warehouse.duckdb out.html 2025-06-02`.
This module finds the tables and assembles the report; `report_sections_run` holds the sections
about this run (books after beside before, decisions by kind and rep, return reasons, changes
held or failed, pool accounts held back, quarantine, top hoarding flags),
`report_sections_state` those about the warehouse as a whole (coverage, book balance, supply
runway, distribution cohorts) and `report_render` the HTML page and its inline SVG charts.
A dry run is labelled as such at the top.
"""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path

import duckdb

from orchestration.report_render import Report
from orchestration.report_sections_run import (
    books_after_section,
    decisions_section,
    held_changes_section,
    held_section,
    hoarding_section,
    quarantine_section,
    rep_names,
    return_reasons_section,
)
from orchestration.report_sections_state import (
    balance_section,
    cohorts_section,
    coverage_section,
    runway_section,
)

log = logging.getLogger(__name__)

# Logical tables and where to find them, best first (public marts, then the contract models).
TABLES: dict[str, tuple[str, ...]] = {
    "accounts": ("marts.accounts", "intermediate.int_accounts_classified"),
    "rep_slots": ("intermediate.int_reps_capacity",),
    "decisions": ("decisions.book_decisions",),
    "candidates": ("decisions.dec_run_candidates",),
}
# Tables a section reads when the warehouse has them (a sentence says so otherwise).
OPTIONAL_TABLES: dict[str, tuple[str, ...]] = {
    "run_decisions": ("decisions.dec_run_decisions",),
    "outcomes": ("decisions.book_decision_outcomes",),
    "quarantine": ("ops.quarantine",),
    "hoarding": ("marts.hoarding_flags",),
    "users": ("intermediate.int_users_classified",),
}


def resolve_tables(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The first existing relation for each logical table; a missing one is a clear error."""
    existing = {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    resolved = {}
    for logical, candidates in TABLES.items():
        found = next((c for c in candidates if c in existing), None)
        if found is None:
            raise LookupError(
                f"report needs table {logical!r}: none of {', '.join(candidates)} exists in the "
                "warehouse (run the dbt models first)"
            )
        resolved[logical] = found
    for logical, candidates in OPTIONAL_TABLES.items():
        found = next((c for c in candidates if c in existing), None)
        if found is not None:
            resolved[logical] = found
    return resolved


def _last_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run the warehouse was last built for (ops.run_context), when none is given."""
    try:
        row = con.execute("select run_id from ops.run_context").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def build_report(
    warehouse: str | Path,
    as_of_date: date,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
) -> Report:
    """Read the marts (read-only) and assemble the report's sections and headline figures."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = resolve_tables(con)
        log.info("report tables: %s", tables)
        run_id = run_id or _last_run_id(con)
        accounts, rep_slots = tables["accounts"], tables["rep_slots"]
        report = Report(as_of_date=as_of_date, run_id=run_id, dry_run=dry_run)
        report.sections.append(books_after_section(con, accounts, rep_slots, dry_run))
        run_decisions = tables.get("run_decisions")
        report.sections += decisions_section(con, run_decisions, rep_slots, run_id)
        report.sections.append(return_reasons_section(con, run_decisions, run_id))
        report.sections.append(held_changes_section(con, tables.get("outcomes"), run_id))
        report.sections.append(held_section(con, tables["candidates"]))
        report.sections.append(quarantine_section(con, tables.get("quarantine"), run_id))
        users = tables.get("users")
        names = (
            f"(select user_id as rep_id, user_name as rep_name from {users})"
            if users
            else rep_names(con, rep_slots)
        )
        report.sections.append(hoarding_section(con, tables.get("hoarding"), names))
        report.sections.append(coverage_section(con, accounts))
        balance, coefficient = balance_section(con, accounts, rep_slots)
        report.sections.append(balance)
        report.sections.append(runway_section(con, accounts, rep_slots))
        report.sections.append(cohorts_section(con, accounts, tables["decisions"]))
        totals = con.execute(
            f"select count(*), count(*) filter (where state = 'ready'), "
            f"count(*) filter (where state in ('working', 'stale')) from {accounts}"
        ).fetchone()
    report.figures = {
        "accounts": float(totals[0]),
        "ready in pool": float(totals[1]),
        "in books (working + stale)": float(totals[2]),
        "book size Gini": coefficient,
    }
    return report


def write_report(
    warehouse: str | Path,
    out_path: str | Path,
    as_of_date: date,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
) -> Report:
    """Build the report and write it as one HTML file (parent folders created)."""
    report = build_report(warehouse, as_of_date, run_id, dry_run=dry_run)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_html(), encoding="utf-8")
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) != 4:
        sys.exit("usage: python -m orchestration.report_html WAREHOUSE OUT.html YYYY-MM-DD")
    write_report(sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3]))
