"""The safe filter language used by segment filters and fit rules (issue 7, item 9).

A condition is structured data, never SQL text: `{field, op, value}` where `field` is an
Account field of `local_crm.schema`, `op` comes from a fixed allowlist that must suit the
field's type, and `value` is a literal of that type. `to_sql` renders validated conditions
into a SQL boolean expression with every literal quoted/escaped here, so a policy file cannot
smuggle functions, sub-queries or statements (e.g. `read_csv(...)`, `COPY ... TO`) into the
warehouse: at worst they become a harmless string literal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
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

# Account fields by name: the field allowlist.
ACCOUNT_FIELDS = {f.name: f for f in OBJECTS["Account"].fields}

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
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
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

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: StrictStr
    op: Op
    value: Scalar | list[Scalar] | None = None

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


def snake_case(name: str) -> str:
    """The dlt snake_case column name of a Salesforce field (`Book_Status__c` -> `book_status_c`).

    Matches the raw layer's naming (CONTRACTS.md) for the field names the schema uses.
    """
    out = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    out = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", out)
    out = re.sub(r"_+", "_", out.lower())
    return out.strip("_")


def default_column_map() -> dict[str, str]:
    """Account field -> snake_case column, the names of the raw and staging layers."""
    return {name: snake_case(name) for name in ACCOUNT_FIELDS}


def _sql_literal(kind: str, value: Any) -> str:
    if kind in ("text", "id"):
        return "'" + str(value).replace("'", "''") + "'"
    if kind == "int":
        return str(int(value))
    if kind == "number":
        number = float(value)
        return str(int(value)) if isinstance(value, int) else repr(number)
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "date":
        return f"date '{date.fromisoformat(value).isoformat()}'"
    if kind == "datetime":
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return f"timestamp '{moment.isoformat(sep=' ')}'"
    raise ValueError(f"no literal rendering for kind {kind!r}")  # pragma: no cover


def _column(field: str, column_map: Mapping[str, str]) -> str:
    if field not in column_map:
        raise ValueError(f"no column mapped for field {field!r}")
    column = column_map[field]
    if not isinstance(column, str) or not _COLUMN.match(column):
        raise ValueError(f"column for {field!r} is not a plain identifier: {column!r}")
    return column


def condition_sql(condition: Condition, column_map: Mapping[str, str]) -> str:
    """Render one validated condition as SQL."""
    column = _column(condition.field, column_map)
    kind = field_kind(condition.field)
    op = condition.op
    if op == "is_null":
        return f"{column} is null"
    if op == "is_not_null":
        return f"{column} is not null"
    if op in _LIST_OPS:
        items = ", ".join(_sql_literal(kind, v) for v in condition.value)  # type: ignore[union-attr]
        return f"{column} {'in' if op == 'in' else 'not in'} ({items})"
    literal = _sql_literal(kind, condition.value)
    if op == "contains":
        return f"position({literal} in {column}) > 0"
    return f"{column} {'<>' if op == '!=' else op} {literal}"


def parse_conditions(conditions: Sequence[Condition | Mapping[str, Any]]) -> list[Condition]:
    """Validate raw mappings (or re-validate models) into Conditions."""
    return [
        Condition.model_validate(c.model_dump() if isinstance(c, Condition) else c)
        for c in conditions
    ]


def to_sql(
    conditions: Sequence[Condition | Mapping[str, Any]],
    column_map: Mapping[str, str] | None = None,
) -> str:
    """Render conditions (AND-ed) as a SQL boolean expression; an empty list is `1 = 1`.

    Conditions are (re-)validated here, so callers cannot bypass the allowlists by building
    dicts by hand. SQL null semantics apply: a comparison on a null value is not true.
    """
    columns = default_column_map() if column_map is None else column_map
    parsed = parse_conditions(conditions)
    if not parsed:
        return "1 = 1"
    return " and ".join(f"({condition_sql(c, columns)})" for c in parsed)
