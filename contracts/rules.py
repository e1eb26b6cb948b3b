"""The data contract of each raw CRM object, derived from `local_crm.schema` and `ingest.fields`.

Why derived: the schema is the source of truth for fields, types, picklists and references, and
ingestion decides which fields are extracted; hand-written suites would drift from both. Rules
come in two kinds:

- row rules (`RowRule`): a SQL predicate that marks one raw row as bad (malformed id, missing
  required value, value outside its picklist or range, dangling reference). Bad rows are
  quarantined and excluded downstream; the rest of the table goes on.
- table rules (checked in `contracts.engine`): the table exists, every frozen column is present
  with its contract type, the live row count did not drop by more than `MAX_ROW_DROP`
  versus the previous load unless deletes explain it, and the objects in `NONEMPTY_OBJECTS`
  have live rows. A failing table rule blocks downstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ingest.fields import ObjectSpec, object_specs, snake
from local_crm.schema import OBJECTS

RAW_SCHEMA = "raw_salesforce"
# 15- or 18-character Salesforce id: case-sensitive alphanumerics (+ 3-char checksum suffix).
ID_PATTERN = r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MAX_ROW_DROP = 0.01  # a live row count may shrink by at most 1% beyond what deletes explain
# Objects a cycle cannot do without: zero live rows fails the contract (an empty or unreadable
# CRM must not "succeed" with nothing to decide), even on a first load without a baseline.
NONEMPTY_OBJECTS = ("Account",)

# DuckDB type of each Salesforce field type in the raw layer (CONTRACTS.md).
DUCK_TYPES = {
    "id": "VARCHAR",
    "reference": "VARCHAR",
    "string": "VARCHAR",
    "url": "VARCHAR",
    "email": "VARCHAR",
    "picklist": "VARCHAR",
    "textarea": "VARCHAR",
    "boolean": "BOOLEAN",
    "int": "BIGINT",
    "double": "DOUBLE",
    "currency": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP WITH TIME ZONE",
}

# Inclusive (min, max) per (object, field); None = unbounded. Counts and money cannot be negative.
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("Account", "NumberOfEmployees"): (0, None),
    ("Account", "AnnualRevenue"): (0, None),
    ("Opportunity", "Amount"): (0, None),
    ("Opportunity", "Close_Date_Push_Count__c"): (0, None),
}

# Referential rules: the reference fields whose target must exist in the raw layer. Only
# ownership and the account link are contract-level: a dangling ParentId is a legitimate data
# quality flag handled in dbt (the account itself is fine), not a reason to drop the row.
REFERENCE_CHECKS = ("OwnerId", "AccountId")


@dataclass(frozen=True)
class RowRule:
    """One row-level rule: `bad_when` is a SQL predicate over the raw row (alias `t`)."""

    object: str  # Salesforce API name, e.g. "Account"
    name: str  # stable rule key, e.g. "owner_id.references_user"
    column: str  # raw column whose value is reported in the quarantine
    bad_when: str
    reason: str
    live_only: bool = True  # tombstones (is_deleted = true) only need a well-formed id


def sql_text(value: str) -> str:
    """A SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _rules_for(spec: ObjectSpec) -> list[RowRule]:
    obj = OBJECTS[spec.name]
    prefix = obj.key_prefix
    rules: list[RowRule] = [
        RowRule(
            spec.name,
            "id.well_formed",
            "id",
            f"t.id is null or not regexp_full_match(t.id, {sql_text(ID_PATTERN)}) "
            f"or left(t.id, 3) <> {sql_text(prefix)}",
            f"Id must be a 15/18-character {spec.name} id starting with {prefix!r}",
            live_only=False,
        )
    ]
    for f in spec.fields:
        col = snake(f.name)
        if f.name == "Id":
            continue
        if not f.nillable:
            rules.append(
                RowRule(
                    spec.name,
                    f"{col}.not_null",
                    col,
                    f"t.{col} is null",
                    f"{f.name} is required",
                )
            )
        if f.type == "reference":
            rules.append(
                RowRule(
                    spec.name,
                    f"{col}.well_formed_id",
                    col,
                    f"t.{col} is not null and not regexp_full_match(t.{col}, "
                    f"{sql_text(ID_PATTERN)})",
                    f"{f.name} must be a 15/18-character Salesforce id",
                )
            )
            if f.name in REFERENCE_CHECKS and f.reference_to in object_specs():
                target = object_specs()[f.reference_to].table
                rules.append(
                    RowRule(
                        spec.name,
                        f"{col}.references_{target}",
                        col,
                        f"t.{col} is not null and not exists (select 1 from "
                        f"{RAW_SCHEMA}.{target} as ref where ref.id = t.{col})",
                        f"{f.name} must reference an existing {f.reference_to}",
                    )
                )
        if f.type == "picklist" and f.picklist:
            allowed = ", ".join(sql_text(v) for v in f.picklist)
            rules.append(
                RowRule(
                    spec.name,
                    f"{col}.picklist",
                    col,
                    f"t.{col} is not null and t.{col} not in ({allowed})",
                    f"{f.name} must be one of {list(f.picklist)}",
                )
            )
        if f.type == "email":
            rules.append(
                RowRule(
                    spec.name,
                    f"{col}.email",
                    col,
                    f"t.{col} is not null and not regexp_full_match(t.{col}, "
                    f"{sql_text(EMAIL_PATTERN)})",
                    f"{f.name} must be an e-mail address",
                )
            )
        bounds = RANGES.get((spec.name, f.name))
        if bounds:
            low, high = bounds
            tests = []
            if low is not None:
                tests.append(f"t.{col} < {low}")
            if high is not None:
                tests.append(f"t.{col} > {high}")
            rules.append(
                RowRule(
                    spec.name,
                    f"{col}.range",
                    col,
                    f"t.{col} is not null and ({' or '.join(tests)})",
                    f"{f.name} must be within [{low}, {high}]",
                )
            )
    return rules


@cache
def row_rules() -> dict[str, tuple[RowRule, ...]]:
    """Row rules per Salesforce object, for every extracted object."""
    return {name: tuple(_rules_for(spec)) for name, spec in object_specs().items()}


@cache
def frozen_columns() -> dict[str, dict[str, str]]:
    """Per object: raw column -> contract DuckDB type (the extracted fields; must never vanish)."""
    return {
        name: {snake(f.name): DUCK_TYPES[f.type] for f in spec.fields}
        for name, spec in object_specs().items()
    }
