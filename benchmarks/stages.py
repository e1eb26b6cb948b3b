"""The benchmark stages and their limits; each function runs in a child (`measure.run_stage`).

Every function takes plain arguments (paths as strings), calls the product's public API exactly
as the Dagster assets do, and returns the figures the results table needs. A product piece that
is not importable yet raises `Unavailable`, so the stage reads "not available" and the run goes
on. A stage that ran but failed returns `_failed` with the reason (its time is still reported).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from benchmarks.measure import Unavailable

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
COLLECTION_SIZE = 200  # sObject Collections: records per call, the write-back's minimum unit


def _need(module: str, name: str) -> Any:
    """`module.name`, or Unavailable if that product piece has not landed yet."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"{module}.{name} is not available ({exc})") from None


@contextmanager
def _local_crm(crm_db: str) -> Iterator[tuple[Any, Any]]:
    """The local CRM served in-process and a logged-in production connection to it."""
    from crm.salesforce import CrmSettings, connect
    from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, start_in_process

    server = start_in_process(crm_db)
    try:
        settings = CrmSettings(
            kind="local",
            base_url=server.url,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        )
        yield server, connect(settings)
    finally:
        server.stop()


# ---------------------------------------------------------------------------- extract


def extract(crm_db: str, warehouse: str, landing: str, loaded_at: str) -> dict[str, Any]:
    """CRM objects (REST/Bulk 2.0 through the connector, dlt into raw) plus landing files."""
    run_salesforce_ingest = _need("ingest.salesforce", "run_salesforce_ingest")
    run_file_ingest = _need("ingest.files", "run_file_ingest")
    with _local_crm(crm_db) as (server, conn):
        seq0 = server.last_request_seq()
        stats = run_salesforce_ingest(conn, warehouse)
        api_calls = len(server.request_log(seq0))
    files = run_file_ingest(landing, warehouse, loaded_at=datetime.fromisoformat(loaded_at))
    crm_rows = sum(s.rows_fetched for s in stats.values())
    return {
        "crm_rows": crm_rows,
        "crm_rows_loaded": sum(s.rows_loaded for s in stats.values()),
        "file_rows": sum(files.rows_loaded.values()),
        "rows": crm_rows + sum(files.rows_loaded.values()),
        "api_calls": api_calls,
        "methods": {name: s.method for name, s in stats.items()},
    }


def _row_count(value: Any) -> int:
    """Rows from whatever `read_sqlite_direct` returns: a count, a per-table dict, a tuple."""
    if isinstance(value, bool):
        raise TypeError("read_sqlite_direct returned a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        if isinstance(value.get("rows"), int):
            return int(value["rows"])
        return sum(v for v in value.values() if isinstance(v, int) and not isinstance(v, bool))
    if isinstance(value, tuple | list) and value:
        return _row_count(value[0])
    rows = getattr(value, "rows", None)
    if isinstance(rows, int):
        return rows
    raise TypeError(f"cannot read a row count from {type(value).__name__}")


def extract_limit(crm_db: str) -> dict[str, Any]:
    """The floor: the same rows read straight from the local CRM's SQLite file."""
    read_sqlite_direct = _need("benchmarks.limits", "read_sqlite_direct")
    return {"rows": _row_count(read_sqlite_direct(crm_db))}


# ---------------------------------------------------------------------------- set-up
# Untimed set-up runs in a child too: a spawned child starts from its parent's high-water mark
# of memory, so work done in the harness process would show up in every stage's peak.


def world(scale: Any, policy_path: str) -> dict[str, Any]:
    from dataclasses import asdict

    from benchmarks.world import cached_world

    return asdict(cached_world(scale, Path(policy_path)))


def daily_changes(crm_db: str) -> dict[str, Any]:
    from benchmarks.world import apply_daily_changes

    return apply_daily_changes(Path(crm_db))


def signal_changes(crm_db: str) -> dict[str, Any]:
    from benchmarks.world import apply_signal_changes

    return apply_signal_changes(Path(crm_db))


def replica(
    source: str, replica_path: str, copies: int, user_groups: int, task_share: int
) -> dict[str, Any]:
    """A replicated raw layer (benchmarks/replica.py)."""
    from benchmarks.measure import say
    from benchmarks.replica import replicate

    rows = replicate(Path(source), Path(replica_path), copies=copies, user_groups=user_groups,
                     task_share=task_share, progress=say)  # fmt: skip
    return {"rows": rows}


# ---------------------------------------------------------------------------- contracts


def contracts(warehouse: str, run_id: str) -> dict[str, Any]:
    run_contracts = _need("contracts", "run_contracts")
    report = run_contracts(warehouse, run_id)
    return {
        "passed": bool(report.passed),
        "quarantined": int(sum(report.quarantined.values())),
        "failures": list(report.failures)[:5],
    }


# ---------------------------------------------------------------------------- dbt


def dbt_policy_env(policy_path: str) -> dict[str, str]:
    """What the Dagster dbt asset gives dbt: the policy in the environment, no vars
    (CONTRACTS.md); the run's as-of date and id are rows of ops.run_context
    (`write_cycle_context`)."""
    load_policy = _need("policy", "load_policy")
    policy_dbt_env = _need("policy", "policy_dbt_env")
    return policy_dbt_env(load_policy(policy_path))


def write_cycle_context(warehouse: str, policy_path: str, as_of: str, run_id: str) -> None:
    """ops.run_context for a full cycle, as the Dagster `ops/run_context` asset writes it."""
    import duckdb

    write_run_context = _need("warehouse.run_context", "write_run_context")
    policy_version = _need("policy", "policy_version")
    version = policy_version(_need("policy", "load_policy")(policy_path))
    with duckdb.connect(warehouse) as con:
        write_run_context(con, run_id, date.fromisoformat(as_of), version, "full")


def dbt_build(
    warehouse: str,
    dbt_dir: str,
    label: str,
    policy_path: str,
    as_of: str,
    run_id: str,
    selector: str = "books_cycle",
    full_refresh: bool = False,
) -> dict[str, Any]:
    """`dbt build --selector` (selectors.yml: what a cycle runs, models and gate tests, or one of
    its halves) in-process (dbtRunner) with its own target dir; keeps the manifest."""
    from dbt.cli.main import dbtRunner

    work = Path(dbt_dir)
    target = work / "target"
    args = [
        "build",
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target),
        "--log-path", str(work / "logs"),
        "--selector", selector,
        "--quiet",
    ]  # fmt: skip
    if full_refresh:
        args.append("--full-refresh")
    write_cycle_context(warehouse, policy_path, as_of, run_id)
    os.environ["BOOKS_WAREHOUSE"] = warehouse
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    os.environ.update(dbt_policy_env(policy_path))
    result = dbtRunner().invoke(args)
    for artifact in ("manifest.json", "run_results.json"):
        if (target / artifact).exists():
            shutil.copy2(target / artifact, work / f"{label}.{artifact}")
    data = _run_results(work / f"{label}.run_results.json")
    if not result.success:
        bad = data.get("failed_nodes") or [repr(result.exception)]
        data["_failed"] = f"dbt build ({label}) failed: " + "; ".join(bad[:5])
    return data


def _run_results(path: Path) -> dict[str, Any]:
    """Node counts and dbt's own per-node timings, split into models and tests."""
    if not path.exists():
        return {}
    results = json.loads(path.read_text())["results"]
    kinds: dict[str, list[dict]] = {}
    for r in results:
        kinds.setdefault(r["unique_id"].split(".", 1)[0], []).append(r)
    return {
        "models": len(kinds.get("model", [])),
        "tests": len(kinds.get("test", [])),
        "model_seconds": round(sum(r["execution_time"] for r in kinds.get("model", [])), 3),
        "test_seconds": round(sum(r["execution_time"] for r in kinds.get("test", [])), 3),
        "failed_nodes": [
            f"{r['unique_id']}: {(r.get('message') or '').strip()[:200]}"
            for r in results
            if r.get("status") in ("error", "fail")
        ],
    }


def compiled_models(manifests: Iterable[str]) -> list[dict[str, Any]]:
    """Every model with compiled SQL in the given manifests, in dependency order."""
    nodes: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        if not Path(manifest).exists():
            continue
        for uid, node in json.loads(Path(manifest).read_text())["nodes"].items():
            if node["resource_type"] == "model" and node.get("compiled_code"):
                nodes[uid] = node
    graph = {
        uid: [d for d in node["depends_on"]["nodes"] if d in nodes] for uid, node in nodes.items()
    }
    return [nodes[uid] for uid in TopologicalSorter(graph).static_order()]


def _model_sql(node: dict[str, Any], incremental: bool) -> list[str]:
    """The statements that build one model from its compiled SQL, as dbt-duckdb does: a view or
    table is replaced; an incremental model on an incremental run gets its new rows inserted,
    after deleting the rows they replace (`unique_key`, delete+insert) if it has a key."""
    kind = node["config"].get("materialized", "table")
    relation, code = node["relation_name"], node["compiled_code"]
    if kind == "incremental" and incremental:
        key = node["config"].get("unique_key")
        delta = "_books_raw_sql_delta"
        replaced = f"delete from {relation} where {key} in (select {key} from {delta})"
        return [
            f"create or replace temp table {delta} as (\n{code}\n)",
            *([replaced] if key else []),
            f"insert into {relation} by name select * from {delta}",
        ]
    ddl = "view" if kind == "view" else "table"
    return [f"create or replace {ddl} {relation} as (\n{code}\n)"]


def _execute_models(con: Any, models: list[dict[str, Any]], incremental: bool) -> list[str]:
    """Build each model from its compiled SQL; returns the models that failed."""
    import duckdb

    failed: list[str] = []
    for node in models:
        if node["config"].get("materialized") == "ephemeral":
            continue  # inlined as a CTE by its users
        try:
            for sql in _model_sql(node, incremental):
                con.execute(sql)
        except duckdb.Error as exc:
            failed.append(f"{node['name']}: {str(exc).splitlines()[0][:160]}")
    return failed


def dbt_raw_sql_groups(
    warehouse_copy: str, manifests: Mapping[str, str], incremental: bool = False
) -> dict[str, Any]:
    """The floor under dbt: each model's compiled SQL (manifest `compiled_code`) run directly in
    one DuckDB connection, in dependency order, group by group (transform, then decisions).
    `incremental`: dbt ran incremental models incrementally (not first build, not full refresh).

    Runs against a copy of the warehouse taken after dbt ran (same file name, so the catalog
    name in the compiled SQL resolves): the SQL must not touch the product's own history. On
    that copy an incremental model finds its new raw rows already merged, so its delta is empty
    and its raw time is a floor.
    """
    import duckdb

    data: dict[str, Any] = {"failed_models": []}
    con = duckdb.connect(warehouse_copy)
    try:
        for group, manifest in manifests.items():
            models = compiled_models([manifest])
            if not models:
                data["_failed"] = f"no compiled models in {manifest}"
                return data
            started = time.perf_counter()
            data["failed_models"] += _execute_models(con, models, incremental)
            data[f"{group}_seconds"] = round(time.perf_counter() - started, 3)
            data[f"{group}_models"] = len(models)
    finally:
        con.close()
    return data


# ---------------------------------------------------------------------------- write-back


def write_back(crm_db: str, warehouse: str, run_id: str, policy_path: str) -> dict[str, Any]:
    """Plan (diff + guards + ledger) and guarded apply against the local CRM, override on."""
    plan_write_back = _need("reverse_etl", "plan_write_back")
    apply_plan = _need("reverse_etl", "apply_plan")
    policy = _write_policy(policy_path)
    started = time.perf_counter()
    plan = plan_write_back(warehouse, run_id, policy=policy)
    plan_seconds = time.perf_counter() - started
    with _local_crm(crm_db) as (server, conn):
        seq0 = server.last_request_seq()
        started = time.perf_counter()
        report = apply_plan(conn, warehouse, plan, override_guard=True)
        apply_seconds = time.perf_counter() - started
        requests = server.request_log(seq0)
    writes = [r for r in requests if r["is_write"]]
    records_sent = sum(int(r.get("records") or 0) for r in writes)
    outcomes = dict(report.outcomes)
    written = outcomes.get("applied", 0) + outcomes.get("rejected", 0)
    return {
        "changes": len(plan.changes),
        "blocked": list(plan.blocked_reasons),
        "api_calls": len(requests),
        "write_calls": len(writes),
        "records_sent": records_sent,
        "unchanged_sent": max(0, records_sent - report.retried_records - written),
        "outcomes": outcomes,
        "plan_seconds": round(plan_seconds, 3),
        "apply_seconds": round(apply_seconds, 3),
    }


def _write_policy(policy_path: str) -> Any:
    """The write-back settings of the policy file, as a cycle passes them."""
    write_policy = _need("reverse_etl", "WritePolicy")
    load_policy = _need("policy", "load_policy")
    return write_policy.from_policy(load_policy(policy_path))


def write_back_plan(warehouse: str, run_id: str, policy_path: str) -> dict[str, Any]:
    """The write-back's plan alone (diff + guards + ledger): a replica warehouse has no CRM."""
    plan_write_back = _need("reverse_etl", "plan_write_back")
    plan = plan_write_back(warehouse, run_id, policy=_write_policy(policy_path))
    return {"changes": len(plan.changes), "blocked": list(plan.blocked_reasons), "plan_only": True}


# ---------------------------------------------------------------------------- report


def report(warehouse: str, out: str, as_of: str, run_id: str) -> dict[str, Any]:
    write_report = _need("orchestration.report_html", "write_report")
    built = write_report(warehouse, out, date.fromisoformat(as_of), run_id)
    return {"sections": len(built.sections), "bytes": Path(out).stat().st_size}


# ---------------------------------------------------------------------------- Dagster


def dagster_cycle(root: str, policy_path: str, as_of: str, attempt: int) -> dict[str, Any]:
    """The whole `books_cycle` as `books run` starts it: runner, persistent instance, job."""
    run_cycle = _need("orchestration.runner", "run_cycle")
    paths = _workspace_paths(Path(root), policy_path)
    summary = run_cycle(
        date.fromisoformat(as_of), dry_run=False, override_guard=True, attempt=attempt, paths=paths
    )
    data: dict[str, Any] = {
        "run_id": summary.run_id,
        "decisions": dict(summary.decisions_by_kind),
        "write_back": {k: v for k, v in summary.write_back.items() if isinstance(v, int)},
    }
    if not summary.success:
        data["_failed"] = _failure("books_cycle", paths, summary)
    return data


def dagster_signal_cycle(
    root: str, policy_path: str, as_of: str, signal_ids: list[str], key: str
) -> dict[str, Any]:
    """The run a hot-signal sensor starts for `signal_ids`, triggered now: its latency from the
    trigger to the end of its CRM write, and the share of accounts its decisions considered."""
    run_cycle = _need("orchestration.runner", "run_cycle")
    paths = _workspace_paths(Path(root), policy_path)
    summary = run_cycle(
        date.fromisoformat(as_of), dry_run=False, override_guard=True, paths=paths,
        mode="signals", ids=tuple(signal_ids), key=key, triggered_at=datetime.now(UTC),
    )  # fmt: skip
    data: dict[str, Any] = {
        "run_id": summary.run_id,
        "decisions": dict(summary.decisions_by_kind),
        "trigger_latency_seconds": summary.write_back.get("trigger_latency_seconds"),
        "write_back": {k: v for k, v in summary.write_back.items() if isinstance(v, int)},
        **_decided_share(paths.warehouse),
    }
    if not summary.success:
        data["_failed"] = _failure("signals run", paths, summary)
    return data


def _failure(what: str, paths: Any, summary: Any) -> str:
    """One line for a failed Dagster run: where it failed and the steps' errors."""
    failed_at = ", ".join(summary.failed_steps)
    return (
        f"{what} failed at {failed_at}: {_step_errors(paths.dagster_home, summary.dagster_run_id)}"
    )


def _decided_share(warehouse: Path) -> dict[str, Any]:
    """Accounts the run's decisions considered (its signals' accounts and the pool candidates
    with them) against all accounts. The transform layer rebuilds every account until the
    as-of models are incremental."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        total = con.execute("select count(*) from intermediate.int_accounts_classified").fetchone()
        considered = con.execute(
            "select count(distinct account_id) from ("
            " select account_id from decisions.dec_cycle_accounts"
            " union all select account_id from decisions.dec_run_candidates)"
        ).fetchone()
    accounts, decided = int(total[0]), int(considered[0])
    return {
        "accounts": accounts,
        "accounts_decided": decided,
        "decided_share": round(decided / accounts, 4) if accounts else None,
    }


def _workspace_paths(ws: Path, policy_path: str) -> Any:
    resolve_paths = _need("policy", "resolve_paths")
    return resolve_paths(
        {
            "BOOKS_POLICY": policy_path,
            "BOOKS_CRM_DB": str(ws / "crm.sqlite"),
            "BOOKS_WAREHOUSE": str(ws / "wh" / "warehouse.duckdb"),
            "BOOKS_LANDING": str(ws / "landing"),
            "DAGSTER_HOME": str(ws / "dagster"),
        }
    )


def _step_errors(dagster_home: Path, dagster_run_id: str) -> str:
    """The first line of each failed step's error, read back from the run's event log."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    failures = instance.all_logs(dagster_run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    messages = []
    for entry in failures:
        error = getattr(entry.dagster_event.event_specific_data, "error", None)
        while getattr(error, "cause", None) is not None:  # the user code's own error
            error = error.cause
        text = (getattr(error, "message", "") or "").strip().splitlines()
        messages.append(f"{entry.step_key}: {text[0][:300] if text else 'no message'}")
    return "; ".join(messages)


def utc_stamp(day: date) -> str:
    """A fixed `_loaded_at` for landing files (the benchmark never stamps with the clock)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()
