{#- Append-only history of dec_run_rep_capacity: one row per (run, rep), appended once per run (see
    macros/decisions/run_history.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns'
) }}
{{ run_history_select('dec_run_rep_capacity', ['rep_id']) }}
