"""Which CRM fields are extracted, how they are typed in DuckDB, and each object's cursor.

Derived from `local_crm.schema` (the source of truth) minus the personal data the product never
uses. Names follow dlt's snake_case so raw tables match CONTRACTS.md (`Book_Status__c` ->
`book_status_c`, `Signal__c` -> `signal_c`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pyarrow as pa
from dlt.common.normalizers.naming.snake_case import NamingConvention

from local_crm.schema import OBJECTS, Field

# Personal data not extracted. Matching needs e-mail addresses (engagement
# feed -> contact/rep, lead -> account domain) and company names, never a person's name.
# User.Name stays: a rep's name is how managers read book reports.
EXCLUDED_FIELDS: dict[str, dict[str, str]] = {
    "Contact": {
        "FirstName": "personal name; contacts are matched by e-mail and account",
        "LastName": "personal name; contacts are matched by e-mail and account",
    },
    "Lead": {
        "FirstName": "personal name; leads are matched by website/e-mail domain and company",
        "LastName": "personal name; leads are matched by website/e-mail domain and company",
    },
}

# Salesforce field type -> (Arrow type, dlt data_type).
_TYPES: dict[str, tuple[pa.DataType, str]] = {
    "id": (pa.string(), "text"),
    "reference": (pa.string(), "text"),
    "string": (pa.string(), "text"),
    "url": (pa.string(), "text"),
    "email": (pa.string(), "text"),
    "picklist": (pa.string(), "text"),
    "textarea": (pa.string(), "text"),
    "boolean": (pa.bool_(), "bool"),
    "int": (pa.int64(), "bigint"),
    "double": (pa.float64(), "double"),
    "currency": (pa.float64(), "double"),
    "date": (pa.date32(), "date"),
    "datetime": (pa.timestamp("us", tz="UTC"), "timestamp"),
}

_NAMING = NamingConvention()


def snake(name: str) -> str:
    """dlt's snake_case of a Salesforce API name (the raw table/column naming contract)."""
    return _NAMING.normalize_identifier(name)


@dataclass(frozen=True)
class ObjectSpec:
    """Everything ingestion needs to know about one CRM object."""

    name: str  # Salesforce API name, e.g. "Signal__c"
    table: str  # raw table name, e.g. "signal_c"
    fields: tuple[Field, ...]  # extracted fields, schema order
    cursor: str  # field the incremental cursor follows

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def arrow_schema(self) -> pa.Schema:
        """Raw-table Arrow schema (snake_case names); every column nullable: raw keeps bad rows."""
        return pa.schema([pa.field(snake(f.name), _TYPES[f.type][0]) for f in self.fields])

    @property
    def column_hints(self) -> dict[str, dict]:
        """dlt column hints so types never depend on inference from the first batch."""
        hints: dict[str, dict] = {}
        for f in self.fields:
            hint: dict = {"name": snake(f.name), "data_type": _TYPES[f.type][1], "nullable": True}
            if f.type == "datetime":
                hint["timezone"] = True
                hint["precision"] = 6
            hints[snake(f.name)] = hint
        return hints

    def soql(self, since: str | None = None) -> str:
        """SELECT of the extracted fields, optionally `cursor >= since` (a SOQL datetime)."""
        sql = f"SELECT {', '.join(self.field_names)} FROM {self.name}"
        if since:
            sql += f" WHERE {self.cursor} >= {since}"
        return sql


@cache
def object_specs() -> dict[str, ObjectSpec]:
    """One spec per object in `local_crm.schema.OBJECTS`, in schema order."""
    out: dict[str, ObjectSpec] = {}
    for obj in OBJECTS.values():
        excluded = EXCLUDED_FIELDS.get(obj.name, {})
        fields = tuple(f for f in obj.fields if f.name not in excluded)
        names = {f.name for f in fields}
        # Immutable rows (AccountHistory) have no SystemModstamp; their CreatedDate never moves.
        cursor = "SystemModstamp" if "SystemModstamp" in names else "CreatedDate"
        out[obj.name] = ObjectSpec(obj.name, snake(obj.name), fields, cursor)
    return out
