"""Credentials never leak: a canary client secret appears 0 times anywhere.

The production login path (`crm.salesforce.connect`) logs in to the in-process local CRM with a
canary secret, queries, fails a login with a wrong secret, and ingests into a warehouse; then
logs (caplog at DEBUG + every log file), the CRM's request log, dlt's pipeline folder and every
text column of every warehouse table are scanned for the canary.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._serdes import serialize_value

from crm import salesforce
from crm.salesforce import CrmError, CrmSettings, connect
from ingest.salesforce import default_pipelines_dir, run_salesforce_ingest
from local_crm.db import CrmStore
from local_crm.generator import generate_world
from local_crm.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ensure_default_credentials,
    local_session,
    start_in_process,
)
from orchestration.runner import run_cycle
from policy import resolve_paths
from tests.homes import home_env
from tests.ingest.conftest import seed_world

CANARY = "CANARY-5f1e9b7c-do-not-leak"
ROOT = Path(__file__).resolve().parents[2]


def _occurrences_in_files(folder: Path) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file() and CANARY.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


def _occurrences_in_warehouse(path: Path) -> list[str]:
    hits = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_catalog = current_database()"
        ).fetchall()
        assert columns, "the scan must see the warehouse tables"
        for schema, table, column in columns:
            n = con.execute(
                f'select count(*) from "{schema}"."{table}" '
                f'where position(? in cast("{column}" as varchar)) > 0',
                [CANARY],
            ).fetchone()[0]
            if n:
                hits.append(f"{schema}.{table}.{column}")
    return hits


def test_canary_secret_appears_nowhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "logs" / "books.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    crm_db, warehouse = tmp_path / "crm.sqlite", tmp_path / "warehouse.duckdb"
    store = CrmStore(crm_db)
    users, _accounts, _contacts = seed_world(store, n_accounts=120)
    store.add_connected_app("canary-client", CANARY, users[0])
    server = start_in_process(crm_db, default_credentials=False)
    try:
        settings = CrmSettings(
            kind="local", base_url=server.url, client_id="canary-client", client_secret=CANARY
        )
        assert CANARY not in repr(settings)
        conn = connect(settings)
        stats = run_salesforce_ingest(conn, warehouse, objects=["User", "Account", "Contact"])
        assert stats["Account"].rows_loaded == 120
        wrong = CrmSettings(
            kind="local", base_url=server.url, client_id="canary-client", client_secret="nope"
        )
        with pytest.raises(CrmError) as failed:
            connect(wrong)
        assert CANARY not in str(failed.value)
        request_log = server.request_log()
    finally:
        server.stop()
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert any("/oauth2/token" in r["path"] for r in request_log)
    leaks = {
        "caplog": caplog.text.count(CANARY),
        "log files": _occurrences_in_files(log_file.parent),
        "crm request log": [r for r in request_log if CANARY in repr(r)],
        "warehouse": _occurrences_in_warehouse(warehouse),
        "dlt pipelines": _occurrences_in_files(default_pipelines_dir(warehouse)),
        "dbt target/logs": [
            hit
            for folder in ("target", "logs")
            if (ROOT / "dbt_project" / folder).exists()
            for hit in _occurrences_in_files(ROOT / "dbt_project" / folder)
        ],
        "other files next to the warehouse": [
            # the CRM's own store (crm.sqlite*) legitimately holds its connected app's secret
            p
            for p in _occurrences_in_files(tmp_path)
            if not Path(p).name.startswith("crm.sqlite")
        ],
    }
    print(f"\ncanary occurrences: {leaks}; log lines captured: {len(caplog.records)}")
    assert len(caplog.records) > 0  # the scan saw real logging
    assert default_pipelines_dir(warehouse).exists()
    assert leaks == {
        "caplog": 0,
        "log files": [],
        "crm request log": [],
        "warehouse": [],
        "dlt pipelines": [],
        "dbt target/logs": [],
        "other files next to the warehouse": [],
    }


# --- a whole books_cycle through Dagster with the canary as the CRM secret env var -----------
CYCLE_AS_OF = date(2025, 6, 2)
SECRET_ENV = "SF_CLIENT_SECRET"


def _policy_for_real_org_path(tmp_path: Path) -> Path:
    """books.yml with `crm.kind: salesforce`: the secret then only ever comes from EnvVar."""
    text = (ROOT / "books.yml").read_text()
    assert "  kind: local" in text and f"client_secret_env: {SECRET_ENV}" in text
    policy = tmp_path / "books.yml"
    policy.write_text(text.replace("  kind: local", "  kind: salesforce", 1))
    return policy


def _bytes_hits(files: list[Path]) -> tuple[list[str], int]:
    hits, scanned = [], 0
    for path in files:
        data = path.read_bytes()
        scanned += len(data)
        if CANARY.encode() in data:
            hits.append(str(path))
    return hits, scanned


def _files(*folders: Path) -> list[Path]:
    return [p for f in folders if f.exists() for p in sorted(f.rglob("*")) if p.is_file()]


@pytest.mark.slow
def test_canary_secret_appears_nowhere_after_a_full_dagster_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real-org code path (EnvVar secret -> Dagster resource config -> OAuth) runs a whole
    books_cycle in-process like `books run`; its HTTPS transport is routed to the local CRM."""
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "logs" / "books.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    paths = resolve_paths(
        {**home_env(tmp_path), "BOOKS_POLICY": str(_policy_for_real_org_path(tmp_path))}
    )
    paths.landing.mkdir()
    generate_world(paths.crm_db, accounts=300, reps=4, seed=11, months=3, as_of=CYCLE_AS_OF,
                   landing_dir=paths.landing, policy_path=paths.policy)  # fmt: skip
    store = CrmStore(paths.crm_db)
    ensure_default_credentials(store)
    run_as = store.check_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert run_as is not None
    store.add_connected_app("canary-client", CANARY, run_as)
    server = start_in_process(paths.crm_db, default_credentials=False)
    monkeypatch.setenv("SF_INSTANCE_URL", server.url)
    monkeypatch.setenv("SF_CLIENT_ID", "canary-client")
    monkeypatch.setenv(SECRET_ENV, CANARY)
    # Real-org transport, routed to the local CRM (a real org would be plain HTTPS).
    monkeypatch.setattr(salesforce, "_session_for", lambda _settings: local_session(server.url))
    try:
        summary = run_cycle(CYCLE_AS_OF, override_guard=True, paths=paths)
        request_log = server.request_log()
    finally:
        server.stop()
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert summary.success, summary.render()
    assert any(r["path"].endswith("/oauth2/token") and r["status"] == 200 for r in request_log)
    assert summary.write_back.get("applied", 0) > 0  # the secret really wrote to the CRM

    # The Dagster event log, through the instance API (every record of every run).
    instance = dg.DagsterInstance.from_config(str(paths.dagster_home))
    try:
        runs = instance.get_runs()
        events = [entry for run in runs for entry in instance.all_logs(run.run_id)]
        event_hits = [e.message for e in events if CANARY in serialize_value(e)]
        run_hits = [r.run_id for r in runs if CANARY in serialize_value(r)]
    finally:
        instance.dispose()
    dbt_dirs = [ROOT / "dbt_project" / "target", ROOT / "dbt_project" / "logs"]
    scans = {
        "dagster home files (sqlite, compute logs)": _files(paths.dagster_home),
        "dbt target/ and logs/": _files(*dbt_dirs),
        "warehouse + analytics files": [p for p in (paths.warehouse, summary.analytics) if p],
        "report html": [summary.report] if summary.report else [],
        "log files": _files(log_file.parent),
    }
    scanned = {name: _bytes_hits(files) for name, files in scans.items()}
    leaks = {
        "caplog": caplog.text.count(CANARY),
        "dagster events": event_hits,
        "dagster runs (config, tags)": run_hits,
        "crm request log": [r for r in request_log if CANARY in repr(r)],
        "warehouse tables": _occurrences_in_warehouse(paths.warehouse),
        "analytics tables": _occurrences_in_warehouse(summary.analytics),
        **{name: hits for name, (hits, _n) in scanned.items()},
    }
    print(
        f"\ncanary after a full Dagster cycle: {len(runs)} run(s), {len(events)} event records, "
        f"{len(caplog.records)} log records; "
        + "; ".join(
            f"{name}: {len(scans[name])} files, {n:,} bytes" for name, (_h, n) in scanned.items()
        )
        + f"; occurrences: {leaks}"
    )
    assert len(events) > 100 and len(runs) == 1
    assert scans["report html"] and scans["dbt target/ and logs/"]
    assert len(scans["dagster home files (sqlite, compute logs)"]) >= 2
    assert leaks == {name: ([] if name != "caplog" else 0) for name in leaks}
