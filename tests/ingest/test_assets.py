"""The Dagster ingestion assets materialize with injected resources and report row counts."""

from __future__ import annotations

import dagster as dg

from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from orchestration.cycle import PolicyResource
from orchestration.ingest import FILE_KEYS, SALESFORCE_KEYS, landing_files, salesforce_raw
from orchestration.resources import CrmResource, WarehouseResource
from policy import resolve_paths


def test_ingest_assets_materialize_with_row_counts(world, tmp_path):
    landing = tmp_path / "landing" / "intent"
    landing.mkdir(parents=True)
    (landing / "w1.csv").write_text(
        "domain,topic,score,week_start_date\nacme.com,crm,50,2025-02-24\nb.io,crm,x,2025-02-24\n"
    )
    (landing / "broken.csv").write_text("domain,topic\nacme.com,crm\n")
    resources = {
        "crm": CrmResource(
            kind="local",
            base_url=world.server.url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        ),
        "warehouse": WarehouseResource(
            path=str(world.warehouse), landing_dir=str(tmp_path / "landing")
        ),
        # The CRM extract first recovers interrupted write-backs, with the policy's knobs.
        "policy": PolicyResource(path=str(resolve_paths({}).policy)),
    }
    result = dg.materialize([salesforce_raw, landing_files], resources=resources)
    assert result.success
    mats = {
        m.asset_key: m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    assert set(mats) == set(SALESFORCE_KEYS.values()) | set(FILE_KEYS.values())
    account = mats[dg.AssetKey(["salesforce", "account"])]
    assert account["rows_loaded"].value == world.store.count("Account", include_deleted=True)
    assert account["dagster/row_count"].value == account["rows_loaded"].value
    intent = mats[dg.AssetKey(["files", "intent_surges"])]
    assert intent["rows_loaded"].value == 1
    assert "intent/broken.csv" in intent["files_rejected"].value
    assert intent["rows_quarantined"].value == 1
    for key in SALESFORCE_KEYS.values():
        spec = salesforce_raw.specs_by_key[key]
        assert spec.group_name == "ingest" and spec.kinds == {"salesforce", "dlt", "duckdb"}
    assert salesforce_raw.op.pool == "duckdb_writer"
