"""Data contracts at the ingestion boundary: quarantine bad CRM rows, block on bad tables."""

from contracts.engine import ContractReport, TableResult, run_contracts
from contracts.rules import RowRule, frozen_columns, row_rules
from contracts.store import ensure_contract_tables

__all__ = [
    "ContractReport",
    "RowRule",
    "TableResult",
    "ensure_contract_tables",
    "frozen_columns",
    "row_rules",
    "run_contracts",
]
