"""Data contracts at the ingestion boundary: quarantine bad CRM rows, block on bad tables."""

from contracts.engine import ContractReport, TableResult, run_contracts
from contracts.overrides import RowDropOverride, parse_objects, record_overrides
from contracts.rules import RowRule, frozen_columns, row_rules
from contracts.store import ensure_contract_tables

__all__ = [
    "ContractReport",
    "RowDropOverride",
    "RowRule",
    "TableResult",
    "ensure_contract_tables",
    "frozen_columns",
    "parse_objects",
    "record_overrides",
    "row_rules",
    "run_contracts",
]
