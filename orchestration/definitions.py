"""The one Dagster entry point of dynamic-books: every asset, check, job, schedule and sensor.

`defs` is built lazily (`@dg.definitions`): importing this module reads no file and no
environment variable; paths and the policy are resolved when Dagster (or the runner) loads the
definitions. The graph: ingestion (CRM objects + landing files) -> data contracts (blocking
checks) -> quarantine view -> dbt (transform, decide; dbt tests as checks) -> write-back guard
(blocking check) -> write-back -> report -> analytics file, run as one job `books_cycle` per
as-of date.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from orchestration import ingest, quarantine, write_back
from orchestration.cadences import build_cadences, build_reconcile_job, build_reconcile_schedule
from orchestration.contracts import CONTRACT_CHECKS
from orchestration.cycle import PolicyResource
from orchestration.dbt_assets import build_dbt_assets, mart_asset_keys
from orchestration.dbt_cli import dbt_resource
from orchestration.dbt_parse import dbt_manifest_path, dbt_project
from orchestration.publish import build_publish_asset
from orchestration.quality import books_quality_job, build_quality_schedule
from orchestration.report import build_report_asset
from orchestration.resources import CrmResource, WarehouseResource
from orchestration.run_context import run_context_asset
from policy import BooksPaths, Policy, load_policy, resolve_paths

JOB_NAME = "books_cycle"


@dataclass(frozen=True)
class CrmEndpoint:
    """A CRM already being served (the runner's in-process local CRM), instead of one per step."""

    base_url: str
    client_id: str
    client_secret: str


def crm_resource(policy: Policy, paths: BooksPaths, endpoint: CrmEndpoint | None) -> CrmResource:
    """The CRM resource the policy asks for; real-org secrets only ever come from EnvVar."""
    if policy.crm.kind == "salesforce":
        sf = policy.crm.salesforce
        return CrmResource(
            kind="salesforce",
            base_url=dg.EnvVar(sf.instance_url_env),
            client_id=dg.EnvVar(sf.client_id_env),
            client_secret=dg.EnvVar(sf.client_secret_env),
            api_version=sf.api_version,
        )
    from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    return CrmResource(
        kind="local",
        base_url=endpoint.base_url if endpoint else None,
        local_db_path=str(paths.crm_db),
        client_id=endpoint.client_id if endpoint else DEFAULT_CLIENT_ID,
        client_secret=endpoint.client_secret if endpoint else DEFAULT_CLIENT_SECRET,
    )


def build_definitions(
    paths: BooksPaths | None = None, *, crm_endpoint: CrmEndpoint | None = None
) -> dg.Definitions:
    """All definitions for one set of paths (default: resolved now, from env or repo defaults)."""
    paths = paths or resolve_paths()
    policy = load_policy(paths.policy)
    dbt_manifest_path(dbt_project, paths)  # a parse, if needed, for these paths' warehouse
    dbt_assets_def = build_dbt_assets(dbt_project)
    report_asset = build_report_asset(mart_asset_keys())
    publish_asset = build_publish_asset(mart_asset_keys())
    books_cycle = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.all(),
        description="One books cycle for an as-of date (run tag books/as_of_date): ingest, "
        "dbt build (transform + decide), CRM write-back, report, analytics file.",
    )
    schedules, sensors = build_cadences(policy, books_cycle)
    books_reconcile = build_reconcile_job(
        dg.AssetSelection.assets(*ingest.SALESFORCE_KEYS.values())
    )
    return dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([ingest, quarantine]),
            run_context_asset,
            dbt_assets_def,
            *dg.load_assets_from_modules([write_back]),
            report_asset,
            publish_asset,
        ],
        asset_checks=[
            *dg.load_asset_checks_from_modules([ingest, write_back]),
            *CONTRACT_CHECKS,
        ],
        jobs=[books_cycle, books_quality_job, books_reconcile],
        schedules=[
            *schedules,
            build_quality_schedule(policy),
            build_reconcile_schedule(policy, books_reconcile),
        ],
        sensors=sensors,
        resources={
            "policy": PolicyResource(path=str(paths.policy)),
            "warehouse": WarehouseResource(
                path=str(paths.warehouse), landing_dir=str(paths.landing)
            ),
            "crm": crm_resource(policy, paths, crm_endpoint),
            "dbt": dbt_resource(),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
