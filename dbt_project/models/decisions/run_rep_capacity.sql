{#- History of dec_run_rep_capacity: one row per (run, rep), the rows of a run's latest attempt
    replacing an earlier attempt's (see macros/decisions/run_history.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['run_id', 'rep_id'],
    on_schema_change='append_new_columns'
) }}
{{ run_history_select('dec_run_rep_capacity') }}
