"""Turn CRM query results (REST JSON records or Bulk 2.0 CSV) into typed Arrow tables.

dlt loads Arrow tables far faster than lists of dicts, and typing here (not by inference in
dlt) guarantees dates arrive as DATE, datetimes as TIMESTAMPTZ, booleans and numbers as such.
A value that does not parse becomes NULL with a warning naming the object, field and ids:
raw keeps every row, and the data contracts downstream quarantine it.
"""

from __future__ import annotations

import csv
import io
import logging

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from ingest.fields import ObjectSpec, snake

log = logging.getLogger(__name__)

_POLARS_NATIVE = {
    "boolean": pl.Boolean,
    "int": pl.Int64,
    "double": pl.Float64,
    "currency": pl.Float64,
}


def _typed(spec: ObjectSpec, frame: pl.DataFrame) -> pa.Table:
    """Cast a frame of raw values (strings or JSON natives) to the spec's Arrow schema."""
    exprs = []
    for f in spec.fields:
        col = pl.col(f.name)
        is_text = frame.schema[f.name] == pl.String
        if f.type == "datetime":
            expr = (
                col.str.replace(r"Z$", "+0000")
                .str.replace(r"([+-]\d\d):(\d\d)$", "$1$2")
                .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC", strict=False)
                .dt.cast_time_unit("us")
            )
        elif f.type == "date":
            expr = col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        elif f.type == "boolean" and is_text:
            expr = pl.when(col.is_null()).then(None).otherwise(col.str.to_lowercase() == "true")
        elif f.type == "int" and is_text:
            expr = col.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False)
        elif f.type in _POLARS_NATIVE:
            expr = col.cast(_POLARS_NATIVE[f.type], strict=False)
        else:
            expr = col.cast(pl.String)
        exprs.append(expr.alias(snake(f.name)))
    typed = frame.select(exprs)
    _warn_unparsed(spec, frame, typed)
    return typed.to_arrow().cast(spec.arrow_schema)


def _warn_unparsed(spec: ObjectSpec, raw: pl.DataFrame, typed: pl.DataFrame) -> None:
    for f in spec.fields:
        lost = raw[f.name].is_not_null() & typed[snake(f.name)].is_null()
        if lost.any():
            ids = raw.filter(lost)["Id"].head(5).to_list()
            values = raw.filter(lost)[f.name].head(3).to_list()
            log.warning(
                "%s.%s: %d value(s) not parseable as %s (kept as NULL), e.g. ids %s values %s",
                spec.name,
                f.name,
                int(lost.sum()),
                f.type,
                ids,
                values,
            )


def records_to_arrow(spec: ObjectSpec, records: list[dict]) -> pa.Table:
    """REST query records (dicts keyed by API name) -> typed Arrow table."""
    columns = {}
    for f in spec.fields:
        dtype = _POLARS_NATIVE.get(f.type, pl.String)
        columns[f.name] = pl.Series(f.name, [r.get(f.name) for r in records], dtype, strict=False)
    return _typed(spec, pl.DataFrame(columns))


def csv_to_arrow(spec: ObjectSpec, data: bytes) -> pa.Table:
    """One Bulk 2.0 CSV result page -> typed Arrow table; a missing column is an error.

    Fast path: Arrow's multi-threaded CSV reader converts straight to the raw schema's types.
    A page holding a value that does not parse as its type takes the tolerant path instead
    (strings, then `_typed`: NULL plus a warning naming the field and ids).
    """
    header = next(csv.reader([data[: data.find(b"\n")].decode("utf-8").rstrip("\r")]), [])
    missing = [n for n in spec.field_names if n not in header]
    if missing:
        raise ValueError(
            f"bulk query result for {spec.name} lacks column(s) {missing}; got {header}"
        )
    types = spec.arrow_schema.types
    try:
        table = _read_csv(data, spec, {f.name: t for f, t in zip(spec.fields, types, strict=True)})
    except pa.ArrowInvalid as exc:
        log.info("%s: a bulk page needs the tolerant parser (%s)", spec.name, exc)
    else:
        return table.rename_columns(spec.arrow_schema.names).cast(spec.arrow_schema)
    strings = _read_csv(data, spec, {name: pa.string() for name in spec.field_names})
    frame = pl.from_arrow(strings)
    assert isinstance(frame, pl.DataFrame)
    return _typed(spec, frame)


def _read_csv(data: bytes, spec: ObjectSpec, types: dict[str, pa.DataType]) -> pa.Table:
    # Only an empty value is null: "N/A" or "null" in a text field is data (dirty websites).
    return pacsv.read_csv(
        io.BytesIO(data),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=spec.field_names,
            strings_can_be_null=True,
            null_values=[""],
            true_values=["true"],
            false_values=["false"],
        ),
    )
