"""Great Expectations suites for the raw objects (imported lazily: GX takes seconds to import).

Two batches per object, both pandas frames fetched once from DuckDB:
- the live table: table-level expectations (frozen columns present, row count not below the
  baseline). A failure here blocks everything downstream.
- the clean set (live rows minus this run's quarantine): the row rules' GX mirror. The SQL
  rules already removed every bad row, so a failure here means the two disagree: also blocking,
  because then the quarantine cannot be trusted.

Why not GX on the whole raw table for row rules: GX reaches DuckDB only through SQLAlchemy
(`duckdb_engine`, not a dependency) or pandas, and it reports failing rows only as a capped
sample of values, not as row ids; the quarantine needs every failing row's id, which one SQL
statement per rule produces exactly and fast.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts.rules import RowRule

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GxOutcome:
    """Failed expectations of one object, as one-line texts."""

    table_failures: tuple[str, ...]
    clean_failures: tuple[str, ...]
    evaluated: int  # expectations evaluated (both batches)


class GxValidator:
    """One ephemeral GX context for a contract run (building it costs more than validating)."""

    def __init__(self) -> None:
        # No network calls from a data pipeline: analytics off before GX reads its config.
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self._context.data_sources.add_pandas("raw_salesforce")

    def _validate(self, name: str, frame: pd.DataFrame, expectations: list[Any]) -> list[str]:
        gx = self._gx
        asset = self._source.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}_all").get_batch(
            batch_parameters={"dataframe": frame}
        )
        suite = gx.ExpectationSuite(name=name, expectations=expectations)
        result = batch.validate(suite)
        failures = []
        for item in result.results:
            if item.success:
                continue
            config = item.expectation_config
            kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
            observed = item.result.get("observed_value", item.result.get("unexpected_count"))
            failures.append(f"{config.type} {kwargs} (observed {observed})")
        return failures

    def validate(
        self,
        obj: str,
        frame: pd.DataFrame,
        quarantined: pd.Series,
        *,
        frozen: list[str],
        min_rows: int,
        rules: tuple[RowRule, ...],
    ) -> GxOutcome:
        """Table-level suite on `frame`; the rules' mirror on `frame[~quarantined]`."""
        ex = self._gx.expectations
        table_suite = [
            ex.ExpectTableColumnsToMatchSet(column_set=frozen, exact_match=False),
            ex.ExpectTableRowCountToBeBetween(min_value=min_rows),
        ]
        clean_suite = []
        for rule in rules:
            if rule.gx is None or rule.gx[1]["column"] not in frame.columns:
                continue
            kind, kwargs = rule.gx
            clean_suite.append(getattr(ex, kind)(**kwargs))
        table_failures = self._validate(f"{obj}_table", frame, table_suite)
        clean = frame.loc[~quarantined].reset_index(drop=True)
        clean_failures = self._validate(f"{obj}_clean", clean, clean_suite) if clean_suite else []
        return GxOutcome(
            tuple(table_failures), tuple(clean_failures), len(table_suite) + len(clean_suite)
        )
