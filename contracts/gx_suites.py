"""Great Expectations suites of the table-level contract, over small frames of table facts.

GX validates two frames that `contracts.engine` computes in DuckDB SQL (one row per raw table,
one row per required column), never the raw tables themselves:
- `tables`: object, table, present, live_rows, min_rows (the row-count floor from the previous
  passed load), is_empty_source (an object a cycle cannot do without has no live rows); the
  table must exist, keep at least `min_rows` live rows, and not be an empty source.
- `columns`: object, table, column, present_type (null when missing), contract_type (null when
  the column is only required because the previous load had it); every frozen column must be
  present with its contract type.

Why facts and not the tables: GX 1.x reads DuckDB only through pandas, so validating raw tables
meant copying every row into pandas (most of the contracts' time and memory at scale), and
row-level rules need every failing row's id for the quarantine, which SQL produces exactly
(`contracts.rules`). Each check lives in one place: row rules in SQL, table rules here.

GX takes seconds to import, so it is imported lazily, once per process (`validator()`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

TABLES = "tables"
COLUMNS = "columns"


@dataclass(frozen=True)
class FactCheck:
    """One GX expectation on a facts frame and how a failing row reads in the report."""

    frame: str  # TABLES or COLUMNS
    kind: str  # GX expectation class name
    kwargs: dict[str, Any]
    message: str  # str.format over the failing row's fields


CHECKS = (
    FactCheck(
        TABLES,
        "ExpectColumnValuesToBeInSet",
        {"column": "present", "value_set": [True]},
        "table {schema}.{table} is missing",
    ),
    FactCheck(
        TABLES,
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": "live_rows", "column_B": "min_rows", "or_equal": True},
        "row_count: observed {live_rows} live rows, below the floor of {min_rows} "
        "(previous load {baseline_rows}, {newly_deleted} newly deleted, at most {max_drop:.0%} "
        "may vanish unexplained)",
    ),
    FactCheck(
        TABLES,
        "ExpectColumnValuesToNotBeInSet",
        {"column": "is_empty_source", "value_set": [True]},
        "no live {object} rows: the CRM returned none (an empty org, or one the integration "
        "user cannot see), and a cycle needs them; if this is intended, accept it for this run "
        "with `books run --accept-row-drop {object} --by WHO --reason WHY`",
    ),
    FactCheck(
        COLUMNS,
        "ExpectColumnValuesToNotBeNull",
        {"column": "present_type"},
        "column {column} is missing from {schema}.{table}",
    ),
    FactCheck(
        COLUMNS,
        "ExpectColumnPairValuesToBeEqual",
        {
            "column_A": "present_type",
            "column_B": "contract_type",
            "ignore_row_if": "either_value_is_missing",
        },
        "column {column} has type {present_type}, contract says {contract_type}",
    ),
)


@dataclass(frozen=True)
class FactFailure:
    """A failed expectation on one row of a facts frame."""

    object: str
    message: str


class GxValidator:
    """An ephemeral GX context with one pandas asset per facts frame and the fixed suites."""

    def __init__(self) -> None:
        # No network calls from a data pipeline: analytics off before GX reads its config.
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("contract_facts")
        self._batches = {
            frame: source.add_dataframe_asset(name=frame).add_batch_definition_whole_dataframe(
                f"{frame}_all"
            )
            for frame in (TABLES, COLUMNS)
        }
        self._suites = {
            frame: [
                (check, getattr(gx.expectations, check.kind)(**check.kwargs))
                for check in CHECKS
                if check.frame == frame
            ]
            for frame in (TABLES, COLUMNS)
        }
        self._gx = gx

    def validate(self, frames: dict[str, pd.DataFrame]) -> list[FactFailure]:
        """Every failing (check, row) of the facts frames, in CHECKS order."""
        failures: list[FactFailure] = []
        for frame_name, frame in frames.items():
            if frame.empty:
                continue
            pairs = self._suites[frame_name]
            suite = self._gx.ExpectationSuite(
                name=f"contract_{frame_name}", expectations=[e for _, e in pairs]
            )
            batch = self._batches[frame_name].get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
            by_type = {e.expectation_type: check for check, e in pairs}
            for item in result.results:
                if item.success:
                    continue
                check = by_type[item.expectation_config.type]
                rows = item.result.get("unexpected_index_list")
                if rows is None:  # an exception inside GX: no rows to name, still blocking
                    info = item.exception_info or {}
                    raise RuntimeError(
                        f"GX could not evaluate {check.kind} on {frame_name}: {info}"
                    )
                for index in rows:
                    row = frame.loc[index].to_dict()
                    failures.append(FactFailure(str(row["object"]), check.message.format(**row)))
        return failures


_lock = threading.Lock()
_validator: GxValidator | None = None


def validator() -> GxValidator:
    """The process-wide validator (GX is imported and its context built only once)."""
    global _validator
    with _lock:
        if _validator is None:
            _validator = GxValidator()
        return _validator
