"""Portability check: the dbt project's SQL uses no DuckDB-only syntax outside the DuckDB
implementations of dispatched macros (`duckdb__*`), so the same project builds on Spark.

The list comes from what DuckDB accepts and Spark SQL rejects or reads differently; each entry
says what to write instead (a dbt cross-database macro or a dispatched macro of our own).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.dbt.dbt_helpers import DBT_PROJECT_DIR

# (name, pattern, what to use instead). `(?<![.\w])` keeps dbt.datediff(...) and friends legal.
DUCKDB_ONLY: list[tuple[str, str, str]] = [
    ("'::' cast", r"::", "cast(x as type) / dbt.type_*()"),
    ("list_* function", r"(?<![.\w])list_[a-z_]+\s*\(", "a dispatched macro"),
    ("list() aggregate", r"(?<![.\w])list\s*\(", "a dispatched macro"),
    ("struct_pack", r"(?<![.\w])struct_pack\s*\(", "a dispatched macro (Spark: struct)"),
    ("epoch_ms", r"(?<![.\w])epoch_ms\s*\(", "a dispatched macro"),
    ("strftime", r"(?<![.\w])strftime\s*\(", "a dispatched macro (Spark: date_format)"),
    ("strptime", r"(?<![.\w])strptime\s*\(", "a dispatched macro (Spark: to_timestamp)"),
    ("regexp_matches", r"(?<![.\w])regexp_matches\s*\(", "a dispatched macro (Spark: rlike)"),
    ("arg_max / arg_min", r"(?<![.\w])arg_(max|min)\s*\(", "max_by / min_by"),
    ("string_agg", r"(?<![.\w])string_agg\s*\(", "dbt.listagg"),
    ("date_diff/datediff", r"(?<![.\w])date_?diff\s*\(", "dbt.datediff (argument order differs)"),
    ("date_add/dateadd", r"(?<![.\w])date_?add\s*\(", "dbt.dateadd (argument types differ)"),
    ("generate_series", r"(?<![.\w])generate_series\s*\(", "a dispatched macro"),
    ("unnest", r"(?<![.\w])unnest\s*\(", "a dispatched macro (Spark: explode)"),
    ("regexp 'g' flag", r",\s*'g'\s*\)", "a dispatched macro (Spark replaces every match)"),
    ("DuckDB-only type", r"\b(hugeint|ubigint|uinteger|utinyint|timestamptz)\b", "dbt.type_*()"),
    ("varchar without length", r"\bvarchar\b(?!\s*\()", "dbt.type_string()"),
    ("select * exclude", r"\*\s*exclude\b", "list the columns"),
    ("create sequence", r"\bcreate\s+sequence\b", "a dispatched macro"),
]
_MACRO = re.compile(
    r"{%-?\s*macro\s+(\w+)\s*\(.*?{%-?\s*endmacro\s*-?%}", re.DOTALL | re.IGNORECASE
)
_JINJA_COMMENT = re.compile(r"{#.*?#}", re.DOTALL)
_SQL_COMMENT = re.compile(r"--[^\n]*")


def _blank(match: re.Match[str]) -> str:
    """Blank out a span but keep its newlines, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _scannable(text: str) -> str:
    """The text without comments and without the bodies of `duckdb__*` macros."""
    text = _JINJA_COMMENT.sub(_blank, text)
    text = _SQL_COMMENT.sub(_blank, text)
    return _MACRO.sub(
        lambda m: _blank(m) if m.group(1).startswith("duckdb__") else m.group(0), text
    )


def duckdb_only_hits(root: Path) -> list[str]:
    """`file:line: name (use ...)` for every DuckDB-only construct under root's SQL files."""
    hits = []
    for file in sorted(root.rglob("*.sql")):
        if "target" in file.relative_to(root).parts:
            continue
        lines = _scannable(file.read_text(encoding="utf-8")).splitlines()
        for number, line in enumerate(lines, start=1):
            for name, pattern, instead in DUCKDB_ONLY:
                if re.search(pattern, line, re.IGNORECASE):
                    where = file.relative_to(root)
                    hits.append(f"{where}:{number}: {name} (use {instead})")
    return hits


def test_project_sql_has_no_duckdb_only_syntax_outside_dispatched_macros() -> None:
    hits = [
        hit
        for folder in ("models", "macros", "tests")
        for hit in duckdb_only_hits(DBT_PROJECT_DIR / folder)
    ]
    assert not hits, "DuckDB-only SQL outside duckdb__ macros:\n" + "\n".join(hits)


def test_a_planted_hit_is_found_and_a_duckdb_macro_body_is_not(tmp_path: Path) -> None:
    (tmp_path / "model.sql").write_text(
        "-- strftime(x) in a comment is fine\n"
        "{# so is list_value(1) in a Jinja comment #}\n"
        "select {{ dbt.datediff('a', 'b', 'day') }} as days,\n"
        "    strftime(created_at, '%Y') as year\n"
        "from t\n"
    )
    (tmp_path / "macro.sql").write_text(
        "{% macro duckdb__year(x) -%} strftime({{ x }}, '%Y') {%- endmacro %}\n"
        "{% macro spark__year(x) -%} date_format({{ x }}, 'yyyy') {%- endmacro %}\n"
        "{% macro default__ids(x) -%} list_distinct({{ x }}) {%- endmacro %}\n"
    )
    assert duckdb_only_hits(tmp_path) == [
        "macro.sql:3: list_* function (use a dispatched macro)",
        "model.sql:4: strftime (use a dispatched macro (Spark: date_format))",
    ]


def test_seed_column_types_are_portable() -> None:
    """Seed column types reach the engine's DDL verbatim (Spark rejects `varchar` without a
    length); `string` means the same text type on DuckDB and Spark."""
    types_only = [(n, p, i) for n, p, i in DUCKDB_ONLY if "type" in n or "varchar" in n]
    hits = []
    for file in sorted((DBT_PROJECT_DIR / "seeds").rglob("*.yml")):
        for seed in yaml.safe_load(file.read_text(encoding="utf-8")).get("seeds", []):
            for column, type_ in (seed.get("config", {}).get("column_types") or {}).items():
                for name, pattern, instead in types_only:
                    if re.search(pattern, str(type_), re.IGNORECASE):
                        hits.append(
                            f"{file.name}: {seed['name']}.{column} {type_}: {name} ({instead})"
                        )
    assert not hits, "\n".join(hits)
