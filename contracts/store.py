"""The contract tables in the warehouse's `ops` schema, and the view dbt staging anti-joins.

`ops.quarantine` is append-only history (one row per failing rule per row per run) of every
bad row the pipeline held back, by `stage`: 'contract' (a raw CRM row failing a row rule, still
in raw and excluded downstream), 'extract' (a CRM record ingestion could not load: its id, field
and why) and 'landing' (a landing-file row: file, row number, column and why).
`ops.quarantined_ids` is what is excluded *now*: the rows flagged by the latest contract run
(each run re-checks every row it has not seen pass and every row it quarantined before, so a
row fixed in the CRM leaves quarantine on the next run). `ops.contract_loads` keeps each run's
table counts and columns: the baseline of the next run's row-count and frozen-column rules, and
a fingerprint that lets a run over unchanged raw data reuse the previous results.
"""

from __future__ import annotations

import duckdb

DDL = (
    "create schema if not exists ops",
    """
    create table if not exists ops.quarantine (
        object varchar not null,      -- Salesforce API name, e.g. 'Account'
        record_id varchar,            -- the raw Id (null or malformed when the id is the fault)
        rule varchar not null,        -- stable rule key, e.g. 'owner_id.references_user'
        value varchar,                -- the offending value, as text
        reason varchar not null,      -- what the contract requires
        run_id varchar not null,
        detected_at timestamptz not null,
        dlt_id varchar,               -- the raw row's _dlt_id (exact row identity; contract)
        stage varchar not null default 'contract',  -- 'contract' | 'extract' | 'landing'
        column_name varchar,          -- the offending column or CRM field
        file_name varchar,            -- landing: 'intent/2025-01-06.csv'
        row_number bigint             -- landing: 1-based data row (the header not counted)
    )
    """,
    # warehouses created before ingestion and landing files quarantined rows
    "alter table ops.quarantine add column if not exists stage varchar default 'contract'",
    "alter table ops.quarantine add column if not exists column_name varchar",
    "alter table ops.quarantine add column if not exists file_name varchar",
    "alter table ops.quarantine add column if not exists row_number bigint",
    """
    create table if not exists ops.contract_runs (
        run_id varchar not null,
        seq bigint not null,          -- order of runs (the latest run defines quarantined_ids)
        passed boolean not null,      -- false: a table-level contract failed (blocking)
        failures varchar[] not null,
        detected_at timestamptz not null
    )
    """,
    """
    create table if not exists ops.contract_loads (
        run_id varchar not null,
        object varchar not null,
        live_rows bigint not null,
        deleted_rows bigint not null,
        columns varchar[] not null,
        passed boolean not null,
        max_load_id varchar,          -- newest _dlt_load_id in the table
        fingerprint varchar           -- rules + column types + max_load_id (unchanged-raw check)
    )
    """,
    # warehouses created before the unchanged-raw check
    "alter table ops.contract_loads add column if not exists max_load_id varchar",
    "alter table ops.contract_loads add column if not exists fingerprint varchar",
    """
    create or replace view ops.quarantined_ids as
    select distinct quarantine.object, quarantine.record_id
    from ops.quarantine
    where quarantine.record_id is not null
      and quarantine.stage = 'contract'
      and quarantine.run_id = (
        select contract_runs.run_id from ops.contract_runs order by contract_runs.seq desc limit 1
      )
    """,
)


def ensure_contract_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ops contract tables and the `ops.quarantined_ids` view (idempotent).

    Call before the first dbt build on a fresh warehouse, so staging's anti-join has a view.
    """
    for statement in DDL:
        con.execute(statement)
    (required,) = con.execute(
        "select is_nullable = 'NO' from information_schema.columns where table_schema = 'ops' "
        "and table_name = 'quarantine' and column_name = 'dlt_id'"
    ).fetchone()
    if required:  # a warehouse from before rows without a raw row (extract, landing)
        con.execute("alter table ops.quarantine alter column dlt_id drop not null")
