{#- Decision-engine input (CONTRACTS.md): one row per live account with its family, segment
    (first matching policy segment), owner kind, R1 state, fit, timing, priority
    (fit_weight * fit + timing_weight * timing, capped 0-100) and the CRM fields the decisions
    read. has_data_quality_issue: fit inputs missing/implausible, hierarchy cycle or dangling
    parent, no matching segment, or the owner's segment list holds several keys.
    owner_departure_reason: why the owner no longer holds this account in a book (inactive
    rep, or, for an account dynamic-books placed with its owner, a non-book role or a segment
    that is neither the account's nor its family's; out of office beyond
    people.departures.out_of_office_release_days); never for an account the policy holds out. -#}
{%- set segments = policy_get('segments') -%}
{%- set away_days = policy_get('people.departures.out_of_office_release_days') -%}
{%- set family_rule = policy_get('lifecycle.hierarchy_rule') -%}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

hierarchy as (
    select * from {{ ref('int_accounts_hierarchy_resolved') }}
),

states as (
    select * from {{ ref('int_account_states_derived') }}
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

users as (
    select * from {{ ref('int_users_classified') }}
),

segmented as (
    select
        account_id,
        case
            {%- for segment in segments %}
            when {{ policy_filter(segment['filter'], 'segments[' ~ loop.index0 ~ '].filter') }}
                then {{ sql_string_literal(segment['key']) }}
            {%- endfor %}
        end as segment_key
    from accounts
),

{# The segments an account may sit in with its owner: its own, and under family_to_one_rep
    any of its family's (a family goes to one rep, in its lead member's segment). -#}
allowed_segments as (
    select distinct
        hierarchy.account_id,
        {%- if family_rule == 'family_to_one_rep' %}
        family_segments.segment_key
    from hierarchy
    inner join hierarchy as family_members
        on hierarchy.family_id = family_members.family_id
    inner join segmented as family_segments
        on family_members.account_id = family_segments.account_id
        {%- else %}
        segmented.segment_key
    from hierarchy
    inner join segmented
        on hierarchy.account_id = segmented.account_id
        {%- endif %}
),

joined as (
    select
        accounts.account_id,
        accounts.account_name,
        hierarchy.family_id,
        hierarchy.is_family_head,
        hierarchy.family_size,
        segmented.segment_key,
        accounts.owner_id,
        coalesce(states.owner_kind, 'non_book') as owner_kind,
        states.state,
        states.state_reason,
        states.state_entered_date,
        fit.fit_score,
        fit.fit_tier,
        fit.fit_confidence,
        timing.timing_score,
        timing.is_in_market,
        timing.is_hot,
        timing.strongest_signal,
        states.has_open_opportunity,
        states.is_customer,
        touches.last_meaningful_touch_date,
        touches.last_touch_by_owner_date,
        accounts.distribution_date,
        accounts.rest_until_date,
        accounts.return_date,
        accounts.return_reason,
        accounts.pending_return_reason,
        accounts.return_requested_by_id,
        accounts.get_back_date,
        states.owner_source,
        states.manual_change_date,
        states.manual_changed_by_id,
        states.manual_from_owner_id,
        users.manager_id as owner_manager_id,
        case
            when states.state_reason = 'held_out' then null
            when states.owner_kind = 'inactive' then 'owner_inactive'
            when states.owner_kind = 'non_book' and states.owner_source = 'dynamic_books'
                then case when users.is_active then 'role_change' else 'owner_inactive' end
            when states.owner_kind = 'rep' and states.owner_source = 'dynamic_books'
                and not users.has_multiple_segments
                and users.segment_key is not null
                and not exists (
                    select 1
                    from allowed_segments
                    where
                        allowed_segments.account_id = accounts.account_id
                        and allowed_segments.segment_key = users.segment_key
                ) then 'segment_change'
            {%- if away_days is not none %}
            when states.owner_kind = 'rep' and users.out_of_office_until_date
                > {{ dbt.dateadd('day', sql_number(away_days, 'policy.people.departures.out_of_office_release_days'), as_of_date()) }}
                then 'out_of_office'
            {%- endif %}
        end as owner_departure_reason,
        fit.has_fit_data_quality_issue
            or hierarchy.has_hierarchy_issue
            or segmented.segment_key is null
            or coalesce(users.has_multiple_segments and users.owner_kind = 'rep', false)
            as has_data_quality_issue
    from accounts
    inner join hierarchy
        on accounts.account_id = hierarchy.account_id
    inner join states
        on accounts.account_id = states.account_id
    inner join fit
        on accounts.account_id = fit.account_id
    inner join timing
        on accounts.account_id = timing.account_id
    inner join touches
        on accounts.account_id = touches.account_id
    inner join segmented
        on accounts.account_id = segmented.account_id
    left join users
        on accounts.owner_id = users.user_id
),

final as (
    select
        account_id,
        account_name,
        family_id,
        is_family_head,
        family_size,
        segment_key,
        owner_id,
        owner_kind,
        state,
        state_reason,
        state_entered_date,
        fit_score,
        fit_tier,
        timing_score,
        is_in_market,
        is_hot,
        strongest_signal,
        case
            when {{ policy_number('priority.fit_weight') }} * fit_score
                + {{ policy_number('priority.timing_weight') }} * timing_score > 100 then 100.0
            else {{ policy_number('priority.fit_weight') }} * fit_score
                + {{ policy_number('priority.timing_weight') }} * timing_score
        end as priority_score,
        has_open_opportunity,
        is_customer,
        last_meaningful_touch_date,
        last_touch_by_owner_date,
        distribution_date,
        rest_until_date,
        return_date,
        return_reason,
        pending_return_reason,
        return_requested_by_id,
        get_back_date,
        has_data_quality_issue,
        fit_confidence,
        owner_source,
        owner_departure_reason,
        owner_manager_id,
        manual_change_date,
        manual_changed_by_id,
        manual_from_owner_id
    from joined
)

select * from final
