"""Turn CRM query results (REST JSON records or Bulk 2.0 CSV) into typed Arrow tables.

dlt loads Arrow tables far faster than lists of dicts, and typing here (not by inference in
dlt) guarantees dates arrive as DATE, datetimes as TIMESTAMPTZ, booleans and numbers as such.
A record with a value that does not parse as its type, or is longer than its Salesforce field
allows (a CRM that let it through, or a value that breaks Arrow's CSV reader), is held back:
appended as `Rejected` (object, id, field, why) to the caller's `held` list for ops.quarantine,
with a warning; the other records of the page load. Why not NULL: a silently emptied value would look like real data.
"""

from __future__ import annotations

import csv
import io
import logging

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from ingest.fields import ObjectSpec, snake
from ingest.quarantine import Rejected

log = logging.getLogger(__name__)


_POLARS_NATIVE = {
    "boolean": pl.Boolean,
    "int": pl.Int64,
    "double": pl.Float64,
    "currency": pl.Float64,
}


def _typed(spec: ObjectSpec, frame: pl.DataFrame, held: list[Rejected] | None) -> pa.Table:
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
    unparsed = {
        f.name: frame[f.name].is_not_null() & typed[snake(f.name)].is_null() for f in spec.fields
    }
    return _screen(spec, typed, unparsed, held, frame)


def _screen(
    spec: ObjectSpec,
    typed: pl.DataFrame,
    unparsed: dict[str, pl.Series],
    held: list[Rejected] | None,
    raw: pl.DataFrame | None = None,
) -> pa.Table:
    """The records without a value longer than its field allows or not parseable as its type;
    one `Rejected` per bad value (naming the record's id) is appended to `held`."""
    bad = {name: mask for name, mask in unparsed.items() if mask.any()}
    for f in spec.fields:
        limit = f.max_length
        if limit is None:
            continue
        longer = typed[snake(f.name)].str.len_chars() > limit
        if longer.any():
            bad[f.name] = longer.fill_null(False) | bad.get(f.name, False)
    if not bad:
        return typed.to_arrow().cast(spec.arrow_schema)
    rejected: list[Rejected] = []
    dropped = pl.Series([False] * typed.height)
    fields = {f.name: f for f in spec.fields}
    for name, mask in bad.items():
        f = fields[name]
        source = raw[name] if raw is not None else typed[snake(name)]
        for row in mask.arg_true().to_list():
            value = source[row]
            text = None if value is None else str(value)
            limit = f.max_length
            if limit is not None and text is not None and len(text) > limit:
                problem, why = (
                    "too_long",
                    f"{len(text)} characters, longer than the field's {limit}",
                )
            else:
                problem, why = "unparseable", f"not parseable as {f.type}"
            rejected.append(
                Rejected("extract", spec.name, name, problem, text, why, record_id=typed["id"][row])
            )
        dropped = dropped | mask
    log.warning(
        "%s: %d record(s) held back, e.g. %s",
        spec.name,
        int(dropped.sum()),
        rejected[0].describe(),
    )
    if held is not None:
        held.extend(rejected)
    return typed.filter(~dropped).to_arrow().cast(spec.arrow_schema)


def records_to_arrow(
    spec: ObjectSpec, records: list[dict], held: list[Rejected] | None = None
) -> pa.Table:
    """REST query records (dicts keyed by API name) -> typed Arrow table of the loadable ones;
    the others are appended to `held` (for ops.quarantine)."""
    columns = {}
    for f in spec.fields:
        dtype = _POLARS_NATIVE.get(f.type, pl.String)
        columns[f.name] = pl.Series(f.name, [r.get(f.name) for r in records], dtype, strict=False)
    return _typed(spec, pl.DataFrame(columns), held)


def csv_to_arrow(spec: ObjectSpec, data: bytes, held: list[Rejected] | None = None) -> pa.Table:
    """One Bulk 2.0 CSV result page -> typed Arrow table; a missing column is an error.

    Fast path: Arrow's multi-threaded CSV reader converts straight to the raw schema's types.
    A page holding a value that does not parse as its type, or a value larger than the reader's
    block, takes the tolerant path instead (strings in one block, then `_typed`). Either way a
    record with a bad value is left out and appended to `held`; the page's others go on.
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
        typed = pl.from_arrow(table.rename_columns(spec.arrow_schema.names).cast(spec.arrow_schema))
        assert isinstance(typed, pl.DataFrame)
        return _screen(spec, typed, {}, held)
    strings = _read_csv(
        data, spec, {name: pa.string() for name in spec.field_names}, block_size=len(data) + 1
    )
    frame = pl.from_arrow(strings)
    assert isinstance(frame, pl.DataFrame)
    return _typed(spec, frame, held)


def _read_csv(
    data: bytes, spec: ObjectSpec, types: dict[str, pa.DataType], block_size: int | None = None
) -> pa.Table:
    # Only an empty value is null: "N/A" or "null" in a text field is data (dirty websites).
    read = pacsv.ReadOptions(block_size=block_size) if block_size else None
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=read,
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=spec.field_names,
            strings_can_be_null=True,
            null_values=[""],
            true_values=["true"],
            false_values=["false"],
        ),
    )
