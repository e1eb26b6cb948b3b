"""The safe filter language used by segment filters and fit rules.

A condition is structured data, never SQL text: `{field, op, value}` where `field` is an
Account field of `local_crm.schema`, `op` comes from a fixed allowlist that must suit the
field's type, and `value` is a literal of that type. This module only validates: the one
renderer to SQL is dbt's `dbt_project/macros/policy_filter.sql` (what actually runs), which
quotes every literal, so a policy file cannot smuggle functions, sub-queries or statements
(e.g. `read_csv(...)`, `COPY ... TO`) into the warehouse: at worst they become a harmless string
literal. tests/security proves this on the SQL dbt renders.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from local_crm.schema import OBJECTS

Op = Literal["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "is_not_null", "contains"]
OPS: tuple[str, ...] = Op.__args__  # type: ignore[attr-defined]

# Account fields a filter may test, by name: the field allowlist. Not filterable: IsDeleted
# (staging drops deleted accounts) and LastModifiedDate (not staged); the dbt renderer maps
# every other field to its staging column.
NOT_FILTERABLE = ("IsDeleted", "LastModifiedDate")
ACCOUNT_FIELDS = {f.name: f for f in OBJECTS["Account"].fields if f.name not in NOT_FILTERABLE}

# Salesforce field type -> the kind of literal it takes.
_KIND_BY_TYPE = {
    "string": "text",
    "url": "text",
    "email": "text",
    "textarea": "text",
    "picklist": "text",
    "id": "id",
    "reference": "id",
    "int": "int",
    "double": "number",
    "currency": "number",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}
_EQUALITY = ("=", "!=", "in", "not_in", "is_null", "is_not_null")
_ORDERED = ("<", "<=", ">", ">=")
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "text": _EQUALITY + ("contains",),
    "id": _EQUALITY,
    "int": _EQUALITY + _ORDERED,
    "number": _EQUALITY + _ORDERED,
    "boolean": ("=", "!=", "is_null", "is_not_null"),
    "date": _EQUALITY + _ORDERED,
    "datetime": _EQUALITY + _ORDERED,
}
_NULL_OPS = ("is_null", "is_not_null")
_LIST_OPS = ("in", "not_in")
_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_MAX_TEXT = 255
_MAX_LIST = 1000

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


def field_kind(field: str) -> str:
    """The literal kind (text, id, int, number, boolean, date, datetime) of an Account field."""
    return _KIND_BY_TYPE[ACCOUNT_FIELDS[field].type]


def _check_literal(field: str, kind: str, value: Any) -> None:
    """Raise ValueError unless `value` is a literal of the field's type."""
    where = f"value for {field} ({ACCOUNT_FIELDS[field].type})"
    if kind in ("text", "id"):
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        if len(value) > _MAX_TEXT:
            raise ValueError(f"{where} is longer than {_MAX_TEXT} characters")
        # Backslashes are escapes in some engines' string literals (Spark), control
        # characters have no place in a CRM value: refuse both rather than guess.
        if "\\" in value or any(ord(ch) < 32 for ch in value):
            raise ValueError(f"{where} must not contain backslashes or control characters")
        picklist = ACCOUNT_FIELDS[field].picklist
        if picklist and value not in picklist:
            raise ValueError(f"{where} must be one of {list(picklist)}, got {value!r}")
        if kind == "id" and not _ID.match(value):
            raise ValueError(f"{where} must be a 15/18-character Salesforce id, got {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
    elif kind == "date":
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(f"{where} must be a date YYYY-MM-DD, got {value!r}")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{where} must be a date YYYY-MM-DD, got {value!r}") from None
    elif kind == "datetime":
        if not isinstance(value, str):
            raise ValueError(f"{where} must be an ISO datetime, got {value!r}")
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{where} must be an ISO datetime, got {value!r}") from None


class Condition(BaseModel):
    """One `{field, op, value}` test on an Account field."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    field: StrictStr
    """Account field the condition tests (Salesforce API name, e.g. NumberOfEmployees)."""
    op: Op
    """Comparison; it must suit the field's type (ordered comparisons on numbers and dates,
    contains on text)."""
    value: Scalar | list[Scalar] | None = None
    """Literal of the field's type; a list for in / not_in; none for is_null / is_not_null."""

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in ACCOUNT_FIELDS:
            raise ValueError(
                f"{value!r} is not an Account field (allowed: {', '.join(ACCOUNT_FIELDS)})"
            )
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _dates_as_text(cls, value: Any) -> Any:
        """YAML reads unquoted dates as date objects; keep them as ISO text (JSON-able)."""

        def one(item: Any) -> Any:
            if isinstance(item, datetime | date):
                return item.isoformat()
            return item

        return [one(v) for v in value] if isinstance(value, list) else one(value)

    @model_validator(mode="after")
    def _op_and_value_fit_field(self) -> Condition:
        kind = field_kind(self.field)
        label = f"{self.field} {self.op}"
        if self.op not in OPS_BY_KIND[kind]:
            raise ValueError(
                f"op {self.op!r} does not apply to {self.field} "
                f"({ACCOUNT_FIELDS[self.field].type}); allowed ops: {list(OPS_BY_KIND[kind])}"
            )
        if self.op in _NULL_OPS:
            if self.value is not None:
                raise ValueError(f"{label} takes no value")
        elif self.op in _LIST_OPS:
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"{label} needs a non-empty list value")
            if len(self.value) > _MAX_LIST:
                raise ValueError(f"{label} list is longer than {_MAX_LIST}")
            for item in self.value:
                _check_literal(self.field, kind, item)
        else:
            if self.value is None or isinstance(self.value, list):
                raise ValueError(f"{label} needs a single value")
            _check_literal(self.field, kind, self.value)
        return self
