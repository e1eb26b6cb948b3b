{#- Every recorded decision (book_decisions) with its latest outcome in the CRM, from the
    write-back's append-only outcome log. A view: it shows the outcome as it stands when read,
    also after this run's write-back. A decision the write-back has not planned yet is pending. -#}
{{ config(materialized='view') }}
with

decisions as (
    select * from {{ ref('book_decisions') }}
),

outcome_log as (
    select * from {{ ref('stg_ops__decision_outcomes') }}
),

ranked_outcomes as (
    select
        outcome_log.*,
        row_number() over (
            partition by outcome_log.run_id, outcome_log.decision_id
            order by outcome_log.outcome_seq desc
        ) as outcome_rank
    from outcome_log
),

latest_outcomes as (
    select * from ranked_outcomes
    where outcome_rank = 1
),

final as (
    select
        decisions.decision_id,
        decisions.run_id,
        decisions.as_of_date,
        decisions.account_id,
        decisions.lead_id,
        decisions.decision_kind,
        decisions.from_owner_id,
        decisions.to_owner_id,
        decisions.from_state,
        decisions.to_state,
        decisions.reason,
        coalesce(latest_outcomes.outcome, 'pending') as outcome,
        latest_outcomes.outcome_code,
        latest_outcomes.outcome_detail,
        latest_outcomes.change_key,
        latest_outcomes.write_attempts,
        latest_outcomes.outcome_recorded_at
    from decisions
    left join latest_outcomes
        on
            decisions.run_id = latest_outcomes.run_id
            and decisions.decision_id = latest_outcomes.decision_id
)

select * from final
