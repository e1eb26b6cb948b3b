{#- The write-back's decision outcome log (ops.decision_outcomes, append-only): one row each time
    a decision's outcome changed. A view, so it shows outcomes the write-back records after the
    build. -#}
with

outcome_log as (
    select * from {{ source('ops', 'decision_outcomes') }}
),

final as (
    select
        seq as outcome_seq,
        run_id,
        decision_id,
        account_id,
        decision_kind,
        lead_id,
        change_key,
        outcome,
        outcome_code,
        outcome_detail,
        attempts as write_attempts,
        recorded_at as outcome_recorded_at
    from outcome_log
)

select * from final
