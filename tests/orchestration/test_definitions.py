"""The Dagster definitions: they load, lineage is one graph, every asset is described and grouped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt.utils import select_unique_ids

from orchestration.cycle import DUCKDB_POOL
from orchestration.dbt_assets import TRANSLATOR
from orchestration.dbt_parse import dbt_project
from orchestration.definitions import JOB_NAME, build_definitions
from orchestration.quality import QUALITY_JOB_NAME, QUALITY_SELECTOR
from policy import load_policy, resolve_paths
from tests.homes import home_env

SNAPSHOT = Path(__file__).with_name("asset_keys.txt")
REPO = Path(__file__).resolve().parents[2]
GROUPS = {"ingest", "transform", "decide", "write_back", "report"}


@pytest.fixture(scope="module")
def defs(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    home = tmp_path_factory.mktemp("home")
    paths = resolve_paths(home_env(home))
    return build_definitions(paths)


@pytest.fixture(scope="module")
def graph(defs: dg.Definitions):
    return defs.resolve_asset_graph()


def test_definitions_load_with_the_cycle_job(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def(JOB_NAME)
    assert job.name == JOB_NAME
    dg.Definitions.validate_loadable(defs)


def test_every_dbt_source_has_an_upstream_asset(graph) -> None:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    assert manifest["sources"], "the dbt project declares no sources"
    for source in manifest["sources"].values():
        key = TRANSLATOR.get_asset_key(source)
        assert graph.has(key), f"dbt source {source['unique_id']} has no asset {key}"
        node = graph.get(key)
        assert node.is_materializable, (
            f"dbt source {source['unique_id']} maps to {key.to_user_string()}, which no "
            "ingestion asset materialises (dangling lineage)"
        )


def test_asset_keys_match_the_snapshot(graph) -> None:
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    text = "\n".join(keys) + "\n"
    if os.environ.get("BOOKS_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.read_text() == text, (
        "asset keys changed; review and run with BOOKS_UPDATE_SNAPSHOTS=1 to accept"
    )


def test_every_asset_is_described_grouped_and_kinded(graph) -> None:
    for node in graph.asset_nodes:
        if not node.is_materializable:
            continue
        name = node.key.to_user_string()
        assert node.description and node.description.strip(), f"{name} has no description"
        assert node.group_name in GROUPS, f"{name} is in group {node.group_name!r}"
        assert node.kinds, f"{name} has no kinds"


def test_dbt_layers_map_onto_transform_and_decide(graph) -> None:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    by_layer: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        group = graph.get(TRANSLATOR.get_asset_key(node)).group_name
        by_layer.setdefault(node["fqn"][1], set()).add(group)
    assert by_layer.get("staging") == {"transform"}
    assert by_layer.get("decisions") == {"decide"}
    assert by_layer.get("sync") == {"decide"}
    for layer in ("intermediate", "marts"):
        assert by_layer.get(layer, {"transform"}) == {"transform"}


def test_warehouse_writers_share_one_pool(defs: dg.Definitions) -> None:
    for assets_def in defs.assets or []:
        if not isinstance(assets_def, dg.AssetsDefinition) or not assets_def.is_executable:
            continue
        pools = {op.pool for op in assets_def.node_def.iterate_op_defs()}
        assert pools == {DUCKDB_POOL}, f"{assets_def.node_def.name} uses pools {pools}"


def _selected_tests(manifest: dict, selector: str) -> set[str]:
    """Unique ids of the dbt tests a selector of dbt_project/selectors.yml selects."""
    ids = select_unique_ids(
        select="fqn:*", exclude="", selector=selector, manifest_json=manifest, project=dbt_project
    )
    return {i for i in ids if i.startswith("test.")}


def test_gate_tests_become_asset_checks_and_quality_tests_do_not(graph) -> None:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    data_tests = {u for u, n in manifest["nodes"].items() if n["resource_type"] == "test"}
    gates = _selected_tests(manifest, "books_gates")
    quality = _selected_tests(manifest, QUALITY_SELECTOR)
    # every data test is exactly one of: a gate (every cycle), a quality test (books_quality)
    assert gates and quality
    assert gates | quality == data_tests
    assert not gates & quality
    check_names = {key.name for key in graph.asset_check_keys}
    gate_checks = {
        manifest["nodes"][u]["name"]
        for u in gates
        if (manifest["nodes"][u].get("attached_node") or "").startswith("model.")
    }
    assert gate_checks <= check_names
    assert not {manifest["nodes"][u]["name"] for u in quality} & check_names
    # the decision models' tests and the core marts' primary keys are gates
    on_decisions = {
        u
        for u in data_tests
        if manifest["nodes"][u]["original_file_path"].startswith(
            ("models/decisions/", "models/sync/")
        )
    }
    assert on_decisions and on_decisions <= gates
    assert "unique_accounts_account_id" in {manifest["nodes"][u]["name"] for u in gates}


def test_the_quality_job_runs_the_quality_selector_on_a_switchable_schedule(
    defs: dg.Definitions,
) -> None:
    job = defs.resolve_job_def(QUALITY_JOB_NAME)
    assert [n.name for n in job.nodes] == ["dbt_quality_tests"]
    schedule = defs.resolve_schedule_def("books_quality_schedule")
    assert schedule.job_name == QUALITY_JOB_NAME
    assert schedule.cron_schedule == load_policy(REPO / "books.yml").cadences.quality.cron


def test_the_write_back_waits_for_the_sync_model_and_the_report_for_the_write_back(graph) -> None:
    write_back = dg.AssetKey(["salesforce_write_back"])
    sync_model = dg.AssetKey(["sync_salesforce__accounts"])
    assert sync_model in graph.get(write_back).parent_keys
    assert graph.get(sync_model).is_materializable  # the dbt model itself, not a loose stub
    assert graph.get(sync_model).group_name == "decide"
    assert write_back in graph.get(dg.AssetKey(["books_report"])).parent_keys


def test_no_asset_is_a_loose_external_stub(graph) -> None:
    stubs = [n.key.to_user_string() for n in graph.asset_nodes if not n.is_materializable]
    assert stubs == [], f"assets nobody materialises (dangling lineage): {stubs}"


def test_translator_maps_sources_and_layers() -> None:
    source = {"resource_type": "source", "source_name": "files", "name": "intent_surges"}
    assert TRANSLATOR.get_asset_key(source) == dg.AssetKey(["files", "intent_surges"])
    model = {"resource_type": "model", "name": "x", "fqn": ["dynamic_books", "sync", "x"]}
    assert TRANSLATOR.get_group_name(model) == "decide"
    model["fqn"] = ["dynamic_books", "marts", "x"]
    assert TRANSLATOR.get_group_name(model) == "transform"


def test_the_crm_write_is_gated_by_blocking_checks(defs: dg.Definitions, graph) -> None:
    specs = {spec.key: spec for checks in defs.asset_checks or [] for spec in checks.check_specs}
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition):
            specs.update({spec.key: spec for spec in assets_def.check_specs})
    sync_model = dg.AssetKey(["sync_salesforce__accounts"])
    guard = specs[dg.AssetCheckKey(sync_model, "write_back_guard")]
    assert guard.blocking
    for key in graph.get_all_asset_keys():
        if key.path[0] == "salesforce":
            assert specs[dg.AssetCheckKey(key, "data_contract")].blocking, key
    sync_tests = [s for s in specs.values() if s.asset_key == sync_model and s is not guard]
    assert sync_tests and all(s.blocking for s in sync_tests if s.name.startswith("not_null"))
