{#- History of dec_run_candidates: one row per (run, account), the rows of a run's latest
    attempt replacing an earlier attempt's (see macros/decisions/run_history.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['run_id', 'account_id'],
    on_schema_change='append_new_columns'
) }}
{{ run_history_select('dec_run_candidates') }}
