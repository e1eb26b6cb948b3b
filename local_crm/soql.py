"""A small SOQL parser that compiles the subset our connector sends to parameterised SQLite SQL.

Supported: `SELECT f1, f2 | COUNT() FROM Object [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`; conditions with `= != <> < <= > >= LIKE IN NOT IN`,
`AND`/`OR`/`NOT`, parentheses, string/number/boolean/null literals, date and datetime literals and
the relative dates `TODAY`, `YESTERDAY`, `TOMORROW`, `LAST_N_DAYS:n`, `NEXT_N_DAYS:n`.
Anything else (relationships, aggregates, GROUP BY, subqueries, FIELDS()) is rejected the way
Salesforce rejects a query it cannot parse, so unsupported SOQL never silently returns wrong rows.
Literal values only ever travel as SQL parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from local_crm.db import (
    ACTIVITY_OBJECTS,
    ARCHIVE_AFTER_DAYS,
    format_date,
    format_datetime,
    parse_datetime,
    qi,
    to_id18,
)
from local_crm.schema import OBJECTS, Field, SObject


class SoqlError(Exception):
    """A query Salesforce would refuse; `error_code` is its REST errorCode."""

    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "NULL",
    "TRUE",
    "FALSE",
    "COUNT",
}
_UNSUPPORTED = {"GROUP", "HAVING", "WITH", "TYPEOF", "USING", "FOR", "INCLUDES", "EXCLUDES"}
_RELATIVE_DATES = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_N_DAYS", "NEXT_N_DAYS"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
_TEXT_TYPES = ("id", "reference", "string", "url", "email", "picklist", "textarea")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise _malformed(text, pos, f"unexpected character: '{text[pos]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    out.append(Token("eof", "<EOF>", len(text)))
    return out


def _malformed(text: str, pos: int, detail: str) -> SoqlError:
    return SoqlError(
        "MALFORMED_QUERY", f"\n{text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{detail}"
    )


@dataclass(frozen=True)
class CompiledQuery:
    """SQL for one SOQL query. The first selected SQL column is always Id (for attributes.url)."""

    object: SObject
    fields: tuple[Field, ...]
    is_count: bool
    sql: str
    params: tuple[Any, ...]
    count_sql: str
    count_params: tuple[Any, ...]
    columns: tuple[str, ...] = ()  # SQL expression of each selected field (after Id)
    tail_sql: str = ""  # `FROM ... WHERE ... ORDER BY ... LIMIT ...`
    tail_params: tuple[Any, ...] = ()
    column_params: tuple[Any, ...] = ()

    def csv_sql(self, delimiter: str = ",") -> tuple[str, tuple[Any, ...]]:
        """SQL returning one Bulk 2.0 CSV line per row (every value quoted, no line ending).

        Why: SQLite formats the line in C with the GIL released, so serving a bulk query
        costs one Python string per row instead of a Python object per value.
        """
        if delimiter in ('"', "'", "%") or len(delimiter) != 1:
            raise ValueError(f"unsupported CSV delimiter {delimiter!r}")
        parts = []
        fields = list(zip(self.fields, self.columns, strict=True))
        for start in range(0, len(fields), _PRINTF_ARGS):  # SQLite caps function arguments
            chunk = fields[start : start + _PRINTF_ARGS]
            fmt = delimiter.join('"%w"' for _ in chunk)
            args = ", ".join(_csv_expr(f, expr) for f, expr in chunk)
            parts.append(f"printf('{fmt}', {args})")
        line = f" || '{delimiter}' || ".join(parts) if parts else "''"
        return f"SELECT {line} {self.tail_sql}", self.column_params + self.tail_params


class _Parser:
    def __init__(self, text: str, include_deleted: bool, now: datetime):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.include_deleted = include_deleted
        self.today = now.astimezone(UTC).date()
        self.obj: SObject | None = None

    # -- token helpers

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def _next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def _fail(self, detail: str | None = None, tok: Token | None = None) -> SoqlError:
        t = tok or self.tok
        return _malformed(self.text, t.pos, detail or f"unexpected token: '{t.text}'")

    def _is_kw(self, *words: str) -> bool:
        return self.tok.kind == "name" and self.tok.upper in words

    def _expect_kw(self, word: str) -> None:
        if not self._is_kw(word):
            raise self._fail()
        self.i += 1

    def _expect_punct(self, ch: str) -> None:
        if not (self.tok.kind == "punct" and self.tok.text == ch):
            raise self._fail()
        self.i += 1

    # -- grammar

    def parse(self) -> CompiledQuery:
        self._expect_kw("SELECT")
        select_toks: list[Token] = []
        is_count = False
        if self._is_kw("COUNT"):
            self.i += 1
            self._expect_punct("(")
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self._fail("the local CRM supports COUNT() only, not aggregate functions")
            self._expect_punct(")")
            is_count = True
        else:
            while True:
                t = self._next()
                if t.kind != "name" or t.upper in _KEYWORDS - {"FIRST", "LAST"}:
                    raise self._fail(tok=t)
                if self.tok.kind == "punct" and self.tok.text == "(":
                    raise self._fail(f"function {t.text}() is not supported by the local CRM", t)
                select_toks.append(t)
                if self.tok.kind == "punct" and self.tok.text == ",":
                    self.i += 1
                    continue
                break
        self._expect_kw("FROM")
        obj_tok = self._next()
        if obj_tok.kind != "name":
            raise self._fail(tok=obj_tok)
        self.obj = _resolve_object(obj_tok.text)
        fields = [self._field(t) for t in select_toks]
        seen: set[str] = set()
        for f, t in zip(fields, select_toks, strict=True):
            if f.name in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {t.text}")
            seen.add(f.name)

        params_where: list[Any] = []
        conds: list[str] = []
        if not self.include_deleted:
            conds.append('t."IsDeleted" = 0')
            if self.obj.name in ACTIVITY_OBJECTS:
                conds.append('(t."ActivityDate" IS NULL OR t."ActivityDate" >= ?)')
                params_where.append(self._archive_cutoff())
        if self._is_kw("WHERE"):
            self.i += 1
            sql, ps = self._or_expr()
            conds.append(f"({sql})")
            params_where.extend(ps)
        order_sql, order_params = "", []
        if self._is_kw("ORDER"):
            self.i += 1
            self._expect_kw("BY")
            order_sql, order_params = self._order_by()
        limit = offset = None
        if self._is_kw("LIMIT"):
            self.i += 1
            limit = self._int_literal()
        if self._is_kw("OFFSET"):
            self.i += 1
            offset = self._int_literal()
        if self.tok.kind != "eof":
            if self.tok.kind == "name" and self.tok.upper in _UNSUPPORTED:
                raise self._fail(f"{self.tok.upper} is not supported by the local CRM")
            raise self._fail()

        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        page = ""
        page_params: list[Any] = []
        if limit is not None or offset is not None:
            page = " LIMIT ? OFFSET ?"
            page_params = [-1 if limit is None else limit, offset or 0]
        select_cols: list[str] = ['t."Id"']
        select_params: list[Any] = []
        for f in fields:
            expr, ps = self._column(f)
            select_cols.append(expr)
            select_params.extend(ps)
        table = f"{qi(self.obj.name)} AS t"
        tail = f"FROM {table}{where}{order_sql}{page}"
        sql = f"SELECT {', '.join(select_cols)} {tail}"
        count_sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {table}{where}{page})"
        return CompiledQuery(
            object=self.obj,
            fields=tuple(fields),
            is_count=is_count,
            sql=sql,
            params=tuple(select_params + params_where + order_params + page_params),
            count_sql=count_sql,
            count_params=tuple(params_where + page_params),
            columns=tuple(select_cols[1:]),
            tail_sql=tail,
            tail_params=tuple(params_where + order_params + page_params),
            column_params=tuple(select_params),
        )

    def _int_literal(self) -> int:
        t = self._next()
        if t.kind != "number" or not t.text.isdigit():
            raise self._fail(tok=t)
        return int(t.text)

    def _archive_cutoff(self) -> str:
        return format_date(self.today - timedelta(days=ARCHIVE_AFTER_DAYS))

    def _field(self, t: Token) -> Field:
        assert self.obj is not None
        if "." in t.text:
            raise SoqlError(
                "INVALID_FIELD",
                f"Didn't understand relationship '{t.text.split('.')[0]}' in field path. "
                "The local CRM supports relationship-free fields only.",
            )
        for f in self.obj.fields:
            if f.name.lower() == t.text.lower():
                return f
        raise SoqlError(
            "INVALID_FIELD",
            f"\n{self.text}\n{' ' * t.pos}^\nERROR at Row:1:Column:{t.pos + 1}\n"
            f"No such column '{t.text}' on entity '{self.obj.name}'. If you are attempting to use "
            "a custom field, be sure to append the '__c' after the custom field name.",
        )

    def _column(self, f: Field) -> tuple[str, list[Any]]:
        """SQL expression of a field; IsArchived of activities is derived from the clock."""
        assert self.obj is not None
        if f.name == "IsArchived" and self.obj.name in ACTIVITY_OBJECTS:
            return (
                '(CASE WHEN t."ActivityDate" IS NOT NULL AND t."ActivityDate" < ? '
                "THEN 1 ELSE 0 END)",
                [self._archive_cutoff()],
            )
        return f"t.{qi(f.name)}", []

    def _order_by(self) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        while True:
            t = self._next()
            if t.kind != "name":
                raise self._fail(tok=t)
            f = self._field(t)
            expr, ps = self._column(f)
            params.extend(ps)
            if f.type in _TEXT_TYPES and f.type not in ("id", "reference"):
                expr += " COLLATE NOCASE"
            direction = "ASC"
            if self._is_kw("ASC", "DESC"):
                direction = self._next().upper
            nulls = ""
            if self._is_kw("NULLS"):
                self.i += 1
                if not self._is_kw("FIRST", "LAST"):
                    raise self._fail()
                nulls = f" NULLS {self._next().upper}"
            parts.append(f"{expr} {direction}{nulls}")
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.i += 1
                continue
            return " ORDER BY " + ", ".join(parts), params

    def _or_expr(self) -> tuple[str, list[Any]]:
        sql, params = self._and_expr()
        parts, all_params = [sql], list(params)
        while self._is_kw("OR"):
            self.i += 1
            s, p = self._and_expr()
            parts.append(s)
            all_params.extend(p)
        return (" OR ".join(parts) if len(parts) > 1 else parts[0]), all_params

    def _and_expr(self) -> tuple[str, list[Any]]:
        sql, params = self._not_expr()
        parts, all_params = [sql], list(params)
        while self._is_kw("AND"):
            self.i += 1
            s, p = self._not_expr()
            parts.append(s)
            all_params.extend(p)
        return (" AND ".join(parts) if len(parts) > 1 else parts[0]), all_params

    def _not_expr(self) -> tuple[str, list[Any]]:
        if self._is_kw("NOT"):
            self.i += 1
            sql, params = self._not_expr()
            return f"NOT ({sql})", params
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.i += 1
            sql, params = self._or_expr()
            self._expect_punct(")")
            return f"({sql})", params
        return self._comparison()

    def _comparison(self) -> tuple[str, list[Any]]:
        t = self._next()
        if t.kind != "name" or t.upper in _KEYWORDS:
            raise self._fail(tok=t)
        f = self._field(t)
        col, col_params = self._column(f)
        nocase = (
            " COLLATE NOCASE" if f.type in _TEXT_TYPES and f.type not in ("id", "reference") else ""
        )
        if self._is_kw("NOT") or self._is_kw("IN"):
            negate = self._is_kw("NOT")
            if negate:
                self.i += 1
            self._expect_kw("IN")
            self._expect_punct("(")
            if self._is_kw("SELECT"):
                raise self._fail("semi-join subqueries are not supported by the local CRM")
            values: list[Any] = []
            while True:
                values.append(self._value_for(f, "IN"))
                if self.tok.kind == "punct" and self.tok.text == ",":
                    self.i += 1
                    continue
                break
            self._expect_punct(")")
            marks = ", ".join("?" for _ in values)
            if negate:  # SOQL's NOT IN keeps nulls, unlike SQL
                return (
                    f"({col} IS NULL OR {col}{nocase} NOT IN ({marks}))",
                    col_params * 2 + values,
                )
            return f"{col}{nocase} IN ({marks})", col_params + values
        if self._is_kw("LIKE"):
            self.i += 1
            if f.type not in _TEXT_TYPES:
                raise SoqlError(
                    "INVALID_FIELD", f"invalid operator on {f.type} field: LIKE on {f.name}"
                )
            lit = self._next()
            if lit.kind != "string":
                raise self._fail(tok=lit)
            return f"{col} LIKE ? ESCAPE '\\'", col_params + [_unquote(lit.text, keep_like=True)]
        op_tok = self._next()
        if op_tok.kind != "op":
            raise self._fail(tok=op_tok)
        op = "!=" if op_tok.text == "<>" else op_tok.text
        if self._is_kw(*_RELATIVE_DATES):
            return self._relative_date(f, col, col_params, op)
        if self._is_kw("NULL"):
            self.i += 1
            if op == "=":
                return f"{col} IS NULL", col_params
            if op == "!=":
                return f"{col} IS NOT NULL", col_params
            raise self._fail("null can only be compared with = or !=", op_tok)
        value = self._value_for(f, op)
        if op == "!=":  # SOQL's != keeps nulls, unlike SQL
            return f"({col} IS NULL OR {col}{nocase} != ?)", col_params * 2 + [value]
        return f"{col}{nocase} {op} ?", col_params + [value]

    def _value_for(self, f: Field, op: str) -> Any:
        """Read one literal and check it fits the field's type, as Salesforce does."""
        t = self._next()
        kind = t.kind
        if kind == "name" and t.upper == "NULL":
            return None
        if f.type in _TEXT_TYPES:
            if kind != "string":
                raise _type_error(f, "string", t)
            value = _unquote(t.text)
            if f.type in ("id", "reference"):
                try:
                    return to_id18(value)
                except ValueError:
                    raise SoqlError(
                        "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}"
                    ) from None
            return value
        if f.type == "boolean":
            if kind != "name" or t.upper not in ("TRUE", "FALSE"):
                raise _type_error(f, "boolean", t)
            return int(t.upper == "TRUE")
        if f.type in ("int", "double", "currency"):
            if kind != "number":
                raise _type_error(f, "number", t)
            return float(t.text) if "." in t.text else int(t.text)
        if f.type == "date":
            if kind != "date":
                raise _type_error(f, "date", t)
            return t.text
        if f.type == "datetime":
            if kind != "datetime":
                raise _type_error(f, "dateTime", t)
            return format_datetime(parse_datetime(t.text))
        raise _type_error(f, f.type, t)

    def _relative_date(
        self, f: Field, col: str, col_params: list[Any], op: str
    ) -> tuple[str, list[Any]]:
        t = self._next()
        name = t.upper
        n = 0
        if name in ("LAST_N_DAYS", "NEXT_N_DAYS"):
            self._expect_punct(":")
            n = self._int_literal()
        elif self.tok.kind == "punct" and self.tok.text == ":":
            raise self._fail()
        if f.type not in ("date", "datetime"):
            raise _type_error(f, f.type, t)
        start, end = {
            "TODAY": (self.today, self.today),
            "YESTERDAY": (self.today - timedelta(days=1), self.today - timedelta(days=1)),
            "TOMORROW": (self.today + timedelta(days=1), self.today + timedelta(days=1)),
            "LAST_N_DAYS": (self.today - timedelta(days=n), self.today),
            "NEXT_N_DAYS": (self.today, self.today + timedelta(days=n)),
        }[name]
        # Half-open range [lo, hi) in the field's storage format.
        if f.type == "date":
            lo, hi = format_date(start), format_date(end + timedelta(days=1))
        else:
            lo = format_datetime(datetime.combine(start, time(), tzinfo=UTC))
            hi = format_datetime(datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC))
        cp = col_params
        if op == "=":
            return f"({col} >= ? AND {col} < ?)", cp + [lo] + cp + [hi]
        if op == "!=":
            return f"({col} IS NULL OR {col} < ? OR {col} >= ?)", cp + cp + [lo] + cp + [hi]
        if op == "<":
            return f"{col} < ?", cp + [lo]
        if op == "<=":
            return f"{col} < ?", cp + [hi]
        if op == ">":
            return f"{col} >= ?", cp + [hi]
        return f"{col} >= ?", cp + [lo]  # >=


def _type_error(f: Field, expected: str, t: Token) -> SoqlError:
    quoted = " and should not be enclosed in quotes" if t.kind == "string" else ""
    return SoqlError(
        "INVALID_FIELD",
        f"value of filter criterion for field '{f.name}' must be of type {expected}{quoted}",
    )


def _unquote(literal: str, keep_like: bool = False) -> str:
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if keep_like and nxt in "%_":
                out.append("\\" + nxt)  # stays escaped for LIKE ... ESCAPE '\'
            else:
                out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _resolve_object(name: str) -> SObject:
    for obj in OBJECTS.values():
        if obj.name.lower() == name.lower():
            return obj
    raise SoqlError(
        "INVALID_TYPE",
        f"\nsObject type '{name}' is not supported. If you are attempting to use a custom "
        "object, be sure to append the '__c' after the entity name.",
    )


def compile_soql(text: str, *, include_deleted: bool, now: datetime) -> CompiledQuery:
    """Compile SOQL to SQL. `include_deleted` is queryAll; `now` is the CRM clock."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "empty query")
    return _Parser(text, include_deleted, now).parse()


def json_value(f: Field, value: Any) -> Any:
    """Storage value -> the JSON value Salesforce's REST API returns."""
    if value is None:
        return None
    if f.type == "boolean":
        return bool(value)
    if f.type == "int":
        return int(value)
    if f.type in ("double", "currency"):
        return float(value)
    return value


_PRINTF_ARGS = 60


def _csv_expr(f: Field, expr: str) -> str:
    """SQL text of a value in Bulk 2.0 CSV: booleans `true`/`false`, numbers exact, null empty."""
    if f.type == "boolean":  # `expr` evaluated once: it may hold a parameter (IsArchived)
        return f"CASE ({expr}) != 0 WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE '' END"
    if f.type in ("double", "currency"):
        if "?" in expr:
            raise ValueError(f"{f.name}: a parameterised number column cannot be CSV-formatted")
        # Shortest text when SQLite's 15 digits round-trip, else 17 digits (lossless).
        return (
            f"CASE WHEN {expr} IS NULL THEN '' "
            f"WHEN CAST(CAST({expr} AS TEXT) AS REAL) = {expr} THEN CAST({expr} AS TEXT) "
            f"ELSE printf('%!.17g', {expr}) END"
        )
    return f"ifnull({expr}, '')"
