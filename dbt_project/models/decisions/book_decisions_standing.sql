{#- The recorded decisions that stand, as this run sees them while it builds (before its
    write-back): what the outcome marts count. A decision stands when
      outcome   its outcome is applied or unchanged (it reached the CRM, or the CRM already held
                it) or recorded (nothing to write: a manual change, a flag);
      this_run  it is a pending decision of the attempt now running (this run's
                dec_run_decisions): the write-back sends it right after the build.
    A killed attempt's writes that reached the CRM are confirmed applied before the build (the
    ingest step finishes what a killed writer left sending or acked), so they count too.
    Superseded decisions (a re-run decided again and dropped them), held ones (a guard or a
    conflict kept them back) and failed ones (the CRM refused them) did not change the CRM and
    do not stand; nor does a killed attempt's pending decision that no write carried (the
    write-back marks it superseded). -#}
{{ config(materialized='view') }}
with

outcomes as (
    select * from {{ ref('book_decision_outcomes') }}
),

run_decisions as (
    select * from {{ ref('dec_run_decisions') }}
),

this_run as (
    select outcomes.decision_id
    from outcomes
    inner join run_decisions
        on
            outcomes.run_id = run_decisions.run_id
            and outcomes.account_id = run_decisions.account_id
            and outcomes.decision_kind = run_decisions.decision_kind
            and outcomes.lead_id is not distinct from run_decisions.lead_id
            and outcomes.from_owner_id is not distinct from run_decisions.from_owner_id
            and outcomes.to_owner_id is not distinct from run_decisions.to_owner_id
            and outcomes.to_state is not distinct from run_decisions.to_state
            and outcomes.reason is not distinct from run_decisions.reason
    where outcomes.outcome = 'pending'
),

final as (
    select
        outcomes.decision_id,
        outcomes.run_id,
        outcomes.as_of_date,
        outcomes.account_id,
        outcomes.lead_id,
        outcomes.decision_kind,
        outcomes.from_owner_id,
        outcomes.to_owner_id,
        outcomes.from_state,
        outcomes.to_state,
        outcomes.reason,
        outcomes.outcome,
        outcomes.outcome_code,
        outcomes.outcome_detail,
        outcomes.change_key,
        outcomes.write_attempts,
        outcomes.outcome_recorded_at,
        case
            when outcomes.outcome in ('applied', 'unchanged', 'recorded') then 'outcome'
            else 'this_run'
        end as stands_because
    from outcomes
    where
        outcomes.outcome in ('applied', 'unchanged', 'recorded')
        or outcomes.decision_id in (select this_run.decision_id from this_run)
)

select * from final
