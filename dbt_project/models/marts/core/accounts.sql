{#- Public: one row per live account for the run's as-of date - state, owner, segment, fit with
    its parts, timing with its strongest signal, priority, touches, the CRM's distribution and
    return fields and data-quality flags. Built on int_accounts_classified (the same rows the
    decision engine reads), so what analysts see is what decided. -#}
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

final as (
    select
        classified.account_id,
        classified.account_name,
        crm_accounts.web_domain,
        classified.segment_key,
        classified.family_id,
        classified.is_family_head,
        classified.family_size,
        classified.owner_id,
        users.user_name as owner_name,
        classified.owner_kind,
        classified.state,
        classified.state_reason,
        classified.state_entered_date,
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
)

select * from final
