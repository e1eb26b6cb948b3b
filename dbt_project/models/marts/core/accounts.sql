{#- Public: one row per live account for the run's as-of date - state and owner as they stand
    after this run's decisions the CRM confirmed (applied or unchanged), with the state and
    owner the run started from beside them (*_before), segment, fit with its parts, timing with
    its strongest signal, priority, touches, the CRM's distribution and return fields and
    data-quality flags. Built on int_accounts_classified (the same rows the decision engine
    reads), so what analysts see is what decided.
    A view: the write-back records the outcomes after the build, and a view reads them when it
    is read (the report and the analytics file are made after the write-back). Until then, and
    for a dry run (nothing recorded), the after columns equal the before ones. -#}
{{ config(materialized='view') }}
{#- The step order of the cycle: when several confirmed decisions touch one account in a run,
    the latest step's result is the account's state after the run. -#}
{%- set step_order = ['return', 'release', 'retrieve', 'signal_route', 'distribute', 'swap'] -%}
with

classified as (
    select * from {{ ref('int_accounts_classified') }}
),

crm_accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

fit as (
    select * from {{ ref('int_accounts_fit_scored') }}
),

timing as (
    select * from {{ ref('int_accounts_timing_scored') }}
),

touches as (
    select * from {{ ref('int_account_touches_aggregated') }}
),

hierarchy as (
    select * from {{ ref('int_accounts_hierarchy_resolved') }}
),

users as (
    select * from {{ ref('int_users_classified') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

decision_outcomes as (
    select * from {{ ref('book_decision_outcomes') }}
),

confirmed_moves as (
    select
        decision_outcomes.account_id,
        decision_outcomes.decision_kind,
        decision_outcomes.to_owner_id,
        decision_outcomes.to_state,
        decision_outcomes.reason,
        row_number() over (
            partition by decision_outcomes.account_id
            order by
                case decision_outcomes.decision_kind
                    {%- for kind in step_order %}
                    when '{{ kind }}' then {{ loop.index }}
                    {%- endfor %}
                    else 0
                end desc,
                decision_outcomes.decision_id
        ) as step_rank
    from decision_outcomes
    inner join run_context
        on decision_outcomes.run_id = run_context.run_id
    where
        decision_outcomes.outcome in ('applied', 'unchanged')
        and decision_outcomes.lead_id is null
        and decision_outcomes.decision_kind in (
            {%- for kind in step_order %}'{{ kind }}'{% if not loop.last %}, {% endif %}{% endfor -%}
        )
),

last_moves as (
    select * from confirmed_moves
    where step_rank = 1
),

final as (
    select
        classified.account_id,
        classified.account_name,
        crm_accounts.web_domain,
        classified.segment_key,
        classified.family_id,
        classified.is_family_head,
        classified.family_size,
        coalesce(last_moves.to_owner_id, classified.owner_id) as owner_id,
        coalesce(owners_after.user_name, users.user_name) as owner_name,
        coalesce(owners_after.owner_kind, classified.owner_kind) as owner_kind,
        coalesce(last_moves.to_state, classified.state) as state,
        coalesce(last_moves.reason, classified.state_reason) as state_reason,
        case
            when last_moves.to_state is not null and last_moves.to_state != classified.state
                then {{ as_of_date() }}
            else classified.state_entered_date
        end as state_entered_date,
        last_moves.decision_kind as changed_by_decision,
        classified.owner_id as owner_id_before,
        users.user_name as owner_name_before,
        classified.owner_kind as owner_kind_before,
        classified.state as state_before,
        classified.fit_score,
        classified.fit_tier,
        classified.fit_confidence,
        fit.fit_component_count,
        fit.fit_explanation,
        classified.timing_score,
        classified.is_in_market,
        classified.is_hot,
        classified.strongest_signal,
        timing.strongest_signal_date,
        timing.strongest_signal_score,
        classified.priority_score,
        classified.has_open_opportunity,
        classified.is_customer,
        classified.last_meaningful_touch_date,
        classified.last_touch_by_owner_date,
        {{ dbt.datediff('classified.last_meaningful_touch_date', as_of_date(), 'day') }}
            as days_since_meaningful_touch,
        touches.touches_30d,
        touches.touches_60d,
        touches.touches_90d,
        touches.contacts_touched_30d,
        touches.contacts_touched_90d,
        classified.distribution_date,
        crm_accounts.distribution_reason,
        classified.return_date,
        classified.return_reason,
        classified.rest_until_date,
        classified.pending_return_reason,
        classified.get_back_date,
        classified.has_data_quality_issue,
        fit.has_fit_data_quality_issue,
        fit.fit_data_quality_flags,
        hierarchy.has_hierarchy_issue,
        classified.segment_key is null as has_no_segment,
        {{ as_of_date() }} as as_of_date,
        {{ mart_run_id() }} as run_id
    from classified
    inner join crm_accounts
        on classified.account_id = crm_accounts.account_id
    inner join fit
        on classified.account_id = fit.account_id
    inner join timing
        on classified.account_id = timing.account_id
    inner join touches
        on classified.account_id = touches.account_id
    inner join hierarchy
        on classified.account_id = hierarchy.account_id
    left join users
        on classified.owner_id = users.user_id
    left join last_moves
        on classified.account_id = last_moves.account_id
    left join users as owners_after
        on last_moves.to_owner_id = owners_after.user_id
)

select * from final
