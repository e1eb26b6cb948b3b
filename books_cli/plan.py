"""What a dry run would write, as a person reads it: counts by change kind and by rep, the first
rows as a table (account, field, before, after, reason), and a CSV with every row.

Read from the run's stored plan (`ops.write_ledger`, written by the planner before any CRM
call) and its decisions (`decisions.dec_run_decisions`); owner ids are shown as user names.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CSV_COLUMNS = (
    "object", "record_id", "record_name", "field", "before", "after", "change_kind", "reason",
    "state",
)  # fmt: skip
OWNER_FIELD = "OwnerId"
NO_DECISION = "state_update"  # a field the run refreshes without a decision (e.g. book status)


@dataclass(frozen=True)
class PlanRow:
    """One field of one planned CRM change."""

    sobject: str
    record_id: str
    record_name: str
    field: str
    before: str | None
    after: str | None
    change_kind: str
    reason: str
    state: str

    def as_csv(self) -> list[str]:
        return [
            self.sobject, self.record_id, self.record_name, self.field, self.before or "",
            self.after or "", self.change_kind, self.reason, self.state,
        ]  # fmt: skip


def plan_rows(warehouse: Path, run_id: str) -> list[PlanRow]:
    """Every planned field change of `run_id`, owner ids replaced by user names."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        ledger = con.execute(
            "select sobject, record_id, fields, before_json, after_json, state "
            "from ops.write_ledger where run_id = ? order by sobject, record_id",
            [run_id],
        ).fetchall()
        decisions = con.execute(
            "select coalesce(lead_id, account_id), decision_kind, reason "
            "from decisions.dec_run_decisions where run_id = ? order by step_number",
            [run_id],
        ).fetchall()
        users = dict(
            con.execute("select user_id, user_name from staging.stg_salesforce__users").fetchall()
        )
        names = dict(
            con.execute(
                "select account_id, account_name from staging.stg_salesforce__accounts "
                "union all select lead_id, company_name from staging.stg_salesforce__leads"
            ).fetchall()
        )
    why: dict[str, list[tuple[str, str]]] = {}
    for record, kind, reason in decisions:
        if (kind, reason) not in why.setdefault(record, []):
            why[record].append((kind, reason))

    def shown(field: str, value: str | None) -> str | None:
        return users.get(value, value) if field == OWNER_FIELD and value else value

    rows = []
    for sobject, record, fields, before_json, after_json, state in ledger:
        before, after = json.loads(before_json), json.loads(after_json)
        reasons = why.get(record, [])
        kind = "+".join(dict.fromkeys(k for k, _ in reasons)) or NO_DECISION
        reason = "; ".join(f"{k}: {r}" if r else k for k, r in reasons)
        for field in json.loads(fields):
            rows.append(
                PlanRow(
                    sobject, record, names.get(record) or record, field,
                    shown(field, before.get(field)), shown(field, after.get(field)),
                    kind, reason, state,
                )
            )  # fmt: skip
    return rows


def by_kind(rows: list[PlanRow]) -> Counter[str]:
    """Changed records per change kind."""
    return Counter(kind for kind, _record in {(r.change_kind, r.record_id) for r in rows})


def by_rep(rows: list[PlanRow]) -> dict[str, Counter[str]]:
    """Per user: records gained and lost (owner changes); other changes are not a rep's."""
    out: dict[str, Counter[str]] = {}
    for row in rows:
        if row.field != OWNER_FIELD:
            continue
        if row.after:
            out.setdefault(row.after, Counter())["gains"] += 1
        if row.before:
            out.setdefault(row.before, Counter())["losses"] += 1
    return out


def write_csv(rows: list[PlanRow], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(row.as_csv() for row in rows)
    return path


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], width: int = 28) -> list[str]:
    """A plain text table; long cells are cut to `width` with an ellipsis."""

    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    cells = [tuple(cut(c) for c in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    ]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]


def render_plan(
    rows: list[PlanRow], csv_path: Path, *, first: int = 10, reps: int = 10
) -> list[str]:
    """The lines a dry run prints about its plan."""
    if not rows:
        return ["dry-run plan: no CRM change"]
    records = len({(r.sobject, r.record_id) for r in rows})
    kinds = by_kind(rows).most_common()
    lines = [
        f"dry-run plan: {records:,} records, {len(rows):,} field changes; by change kind: "
        + ", ".join(f"{kind} {n:,}" for kind, n in kinds)
    ]
    per_rep = sorted(by_rep(rows).items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    if per_rep:
        table = [(name, f"{c['gains']:,}", f"{c['losses']:,}") for name, c in per_rep[:reps]]
        lines += ["owner changes by user:", *_table(("user", "gains", "losses"), table)]
        if len(per_rep) > reps:
            lines.append(f"  ... {len(per_rep) - reps} more users in the CSV")
    decided_first = sorted(
        rows, key=lambda r: (r.change_kind == NO_DECISION, r.change_kind, r.record_name, r.field)
    )
    shown = [
        (r.record_name, r.field, r.before or "-", r.after or "-", r.reason or r.change_kind)
        for r in decided_first[:first]
    ]
    lines += [
        f"first {len(shown)} of {len(rows):,} field changes:",
        *_table(("account", "field", "before", "after", "reason"), shown),
        f"every change: {csv_path}",
    ]
    return lines
