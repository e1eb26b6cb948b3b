{#- Append-only history of dec_run_candidates: one row per (run, account), appended once per
    run (see macros/decisions/run_history.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns'
) }}
{{ run_history_select('dec_run_candidates', ['account_id']) }}
