"""The `books run` summary shows what the extract's reconciliation found and fixed, and warns
when the CRM's and the warehouse's row counts differ after the run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from orchestration.summary import CycleSummary, ingest_checks


def _summary(materialized: dict[dg.AssetKey, dict]) -> str:
    reconciliation, gaps = ingest_checks(materialized)
    return CycleSummary(
        as_of_date=date(2025, 6, 2), run_id="r", dagster_run_id="d", policy_version="p" * 64,
        success=True, dry_run=False, warehouse=Path("w.duckdb"), report=None,
        reconciliation=reconciliation, count_gaps=gaps,
    ).render()  # fmt: skip


def test_a_count_gap_is_a_warning_with_both_counts() -> None:
    text = _summary({dg.AssetKey(["salesforce", "account"]): {"crm_rows": 3001, "count_gap": 1}})
    assert "WARNING: CRM and warehouse row counts differ" in text
    assert "salesforce/account" in text and "CRM 3,001, warehouse 3,000" in text
    assert "books run --reconcile" in text


def test_reconciliation_counts_and_no_warning_when_counts_agree() -> None:
    text = _summary(
        {dg.AssetKey(["salesforce", "account"]): {"reconcile_found": 2, "reconcile_fixed": 2}}
    )
    assert "reconciliation" in text and "2 / 2" in text
    assert "WARNING" not in text


def test_a_failed_step_says_why_on_the_status_line() -> None:
    text = CycleSummary(
        as_of_date=date(2025, 6, 2), run_id="r", dagster_run_id="d", policy_version="p" * 64,
        success=False, dry_run=False, warehouse=Path("w.duckdb"), report=None,
        failed_steps=["raw_salesforce_contracts"],
        failure_reasons={"raw_salesforce_contracts": "2 blocking asset checks failed"},
        failed_checks={
            "salesforce/user:data_contract": "account: no live Account rows: accept it",
            "salesforce/account:data_contract": "account: no live Account rows: accept it",
        },
    ).render()  # fmt: skip
    first, second, third = text.splitlines()[:3]
    assert first.endswith("FAILED at raw_salesforce_contracts")
    assert second == "  raw_salesforce_contracts: 2 blocking asset checks failed"
    assert third == (
        "  failed checks salesforce/user:data_contract, salesforce/account:data_contract: "
        "account: no live Account rows: accept it"
    )
