{#- ops.decision_outcomes, the write-back's append-only decision outcome log
    (reverse_etl/outcomes.py keeps the same DDL and writes it). Created here too, so a dbt build
    on a warehouse the write-back has not touched yet (a dry run, a test world) can build the
    staging view over it. -#}
{% macro ensure_decision_outcomes() -%}
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
