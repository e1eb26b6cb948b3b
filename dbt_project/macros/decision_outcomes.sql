{#- ops.decision_outcomes, the write-back's append-only decision outcome log
    (reverse_etl/outcomes.py keeps the same DDL and writes it). Created here too, so a dbt build
    on a warehouse the write-back has not touched yet (a dry run, a test world) can build the
    staging view over it. -#}
{% macro ensure_decision_outcomes() -%}
    {{ return(adapter.dispatch('ensure_decision_outcomes', 'dynamic_books')()) }}
{%- endmacro %}

{% macro duckdb__ensure_decision_outcomes() -%}
create schema if not exists ops;
create sequence if not exists ops.decision_outcome_seq;
create table if not exists ops.decision_outcomes (
    seq bigint not null,
    run_id varchar not null,
    decision_id varchar not null,
    account_id varchar not null,
    decision_kind varchar not null,
    lead_id varchar,
    change_key varchar,
    outcome varchar not null,
    outcome_code varchar,
    outcome_detail varchar,
    attempts integer,
    recorded_at timestamptz not null
)
{%- endmacro %}


{#- Spark: a Parquet table of the same columns (no sequences there; seq is written by the
    ledger's own store, which needs row-level updates and so does not live in Spark). One statement: a Spark hook runs one;
    schema ops exists, the raw loader registers the ops tables in it. -#}
{% macro spark__ensure_decision_outcomes() -%}
create table if not exists ops.decision_outcomes (
    seq bigint,
    run_id string,
    decision_id string,
    account_id string,
    decision_kind string,
    lead_id string,
    change_key string,
    outcome string,
    outcome_code string,
    outcome_detail string,
    attempts int,
    recorded_at timestamp
) using parquet
{%- endmacro %}
