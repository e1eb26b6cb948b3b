"""The CRM extract asset: its look-back window comes from the policy, a reconciliation run
(tag books/reconcile) loads late rows and reports found/fixed, and every run warns when the
CRM's row count and the warehouse's differ."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from local_crm.db import CrmStore
from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, start_in_process
from orchestration.cycle import TAG_RECONCILE, PolicyResource, cycle_tags
from orchestration.ingest import SALESFORCE_KEYS, salesforce_raw
from orchestration.resources import CrmResource, WarehouseResource
from policy import load_policy, resolve_paths
from policy.loader import PolicyError
from tests.ingest.conftest import seed_world

ACCOUNT = SALESFORCE_KEYS["Account"]
SELECTION = [SALESFORCE_KEYS["User"], ACCOUNT]
GAP_WARNING = "row counts differ"


def _policy(tmp_path: Path, lookback_minutes: int) -> Path:
    data = yaml.safe_load(resolve_paths({}).policy.read_text(encoding="utf-8"))
    data["ingest"]["lookback_minutes"] = lookback_minutes
    path = tmp_path / f"books-{lookback_minutes}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _extract(url: str, tmp_path: Path, policy: Path, **tags: str):
    resources = {
        "crm": CrmResource(
            kind="local", base_url=url, client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        ),
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        "policy": PolicyResource(path=str(policy)),
    }  # fmt: skip
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [salesforce_raw],
        selection=SELECTION,
        resources=resources,
        tags=cycle_tags(date(2025, 6, 2), "run-1", extra=tags),
        instance=instance,
    )
    assert result.success
    (meta,) = [
        m.event_specific_data.materialization.metadata
        for m in result.get_asset_materialization_events()
        if m.event_specific_data.materialization.asset_key == ACCOUNT
    ]
    warned = any(
        e.level == logging.WARNING and GAP_WARNING in e.user_message
        for e in instance.all_logs(result.run_id)
    )
    return {k: getattr(v, "value", v) for k, v in meta.items()}, warned


@pytest.fixture
def crm(tmp_path: Path):
    """A CRM loaded once, then an Account committed 2 hours behind the cursor."""
    store = CrmStore(tmp_path / "crm.sqlite")
    now = store.clock.now()
    store.clock.set(now - timedelta(days=10))
    users, _, _ = seed_world(store, n_accounts=80)
    store.clock.set(now)
    store.insert("Account", [{"Name": "Newest", "OwnerId": users[0]}])
    server = start_in_process(tmp_path / "crm.sqlite")

    def commit_late() -> None:
        store.clock.set(now - timedelta(hours=2))
        store.insert("Account", [{"Name": "Late", "OwnerId": users[0]}])
        store.clock.set(now + timedelta(hours=1))

    try:
        yield server.url, commit_late
    finally:
        server.stop()


def test_reconciliation_loads_a_late_row_and_the_count_warning_clears(crm, tmp_path: Path) -> None:
    url, commit_late = crm
    policy = _policy(tmp_path, 15)
    _, warned = _extract(url, tmp_path, policy)
    assert not warned
    commit_late()
    meta, warned = _extract(url, tmp_path, policy)
    assert warned and meta["count_gap"] == 1  # the 2-hour-late row is outside 15 minutes
    meta, warned = _extract(url, tmp_path, policy, **{TAG_RECONCILE: "true"})
    assert (meta["reconcile_found"], meta["reconcile_fixed"]) == (1, 1)
    assert not warned and "count_gap" not in meta


def test_the_look_back_window_is_policy(crm, tmp_path: Path) -> None:
    url, commit_late = crm
    policy = _policy(tmp_path, 180)
    _extract(url, tmp_path, policy)
    commit_late()
    meta, warned = _extract(url, tmp_path, policy)
    assert meta["rows_loaded"] == 1 and not warned  # 2 hours late is inside 3 hours


@pytest.mark.parametrize("value", [-1, 10081, "15m"])
def test_a_bad_look_back_names_the_field(tmp_path: Path, value: object) -> None:
    data = yaml.safe_load(resolve_paths({}).policy.read_text(encoding="utf-8"))
    data["ingest"]["lookback_minutes"] = value
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(PolicyError, match="ingest.lookback_minutes"):
        load_policy(path)
