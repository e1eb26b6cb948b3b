{#- The audit trail of every decision (R15): one row per (run, account, decision kind, lead;
    lead_id is set only on lead_route rows, one per routed lead), appended once per run from
    dec_run_decisions. Re-running a run_id appends nothing (a run appends all its rows at once,
    so rows already recorded for (run, account, kind) are kept as first decided): history is
    never rewritten. A dry run appends nothing, so it cannot use up a rep's budget for the real
    run of the same date. New columns are added to an existing table (on_schema_change). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns'
) }}
with

run_decisions as (
    select * from {{ ref('dec_run_decisions') }}
),

final as (
    select run_decisions.*
    from run_decisions
    where not {{ is_dry_run() }}
    {%- if is_incremental() %}
        and not exists (
            select 1
            from {{ this }} as recorded
            where
                recorded.run_id = run_decisions.run_id
                and recorded.account_id = run_decisions.account_id
                and recorded.decision_kind = run_decisions.decision_kind
        )
    {%- endif %}
)

select * from final
