{#- Exactly one R1 state per account for the as-of date, with the rule that decided it and the
    date the account entered it. Rules, first match wins:
      open opportunity or Type = Customer           -> converted (whoever owns it)
      owner unknown / non-book / inactive rep       -> excluded
      family member converted (exclude_family rule) -> converted
      pool owner: Book_Status__c retired            -> retired
                  Book_Status__c review             -> review
                  Rest_Until__c >= as-of date       -> resting (ready the day after)
                  otherwise                         -> ready
      rep owner:  meaningful touch by the owner within working_window_days -> working
                  distributed within grace_period_days                     -> working
                  otherwise                                                -> stale
    A customer or open opportunity is converted even under a non-book owner (it is outside the
    books either way, and converted says more). Retired and review are checked before resting: a permanent or bad-data verdict is not
    lifted by the end of a rest. The entered date is derived from CRM dates and field history
    (approximate where the CRM keeps no history, see column docs). -#}
{%- set window = policy_number('lifecycle.working_window_days') -%}
{%- set grace = policy_number('lifecycle.grace_period_days') -%}
{%- set family_rule = policy_get('lifecycle.converted_family_rule') -%}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

users as (
    select * from {{ ref('int_users_classified') }}
),

touches as (
    select * from {{ ref('int_account_touches_aggregated') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

hierarchy as (
    select * from {{ ref('int_accounts_hierarchy_resolved') }}
),

account_history as (
    select * from {{ ref('stg_salesforce__account_history') }}
),

open_opportunities as (
    select
        account_id,
        min(created_date) as first_open_opportunity_date,
        count(*) as open_opportunity_count
    from opportunities
    where not is_closed
        and account_id is not null
    group by account_id
),

history_dates as (
    select
        account_id,
        max(case when field_name = 'OwnerId' then changed_date end) as owner_changed_date,
        max(case when field_name = 'Book_Status__c' then changed_date end) as status_changed_date
    from account_history
    group by account_id
),

enriched as (
    select
        accounts.account_id,
        accounts.owner_id,
        accounts.account_type,
        accounts.book_status,
        accounts.rest_until_date,
        accounts.distribution_date,
        accounts.return_date,
        cast(accounts.created_at as date) as created_date,
        users.owner_kind,
        hierarchy.family_id,
        touches.last_touch_by_owner_date,
        open_opportunities.first_open_opportunity_date,
        coalesce(open_opportunities.open_opportunity_count, 0) > 0 as has_open_opportunity,
        coalesce(accounts.account_type = 'Customer', false) as is_customer,
        history_dates.owner_changed_date,
        history_dates.status_changed_date
    from accounts
    left join users
        on accounts.owner_id = users.user_id
    left join touches
        on accounts.account_id = touches.account_id
    left join open_opportunities
        on accounts.account_id = open_opportunities.account_id
    left join hierarchy
        on accounts.account_id = hierarchy.account_id
    left join history_dates
        on accounts.account_id = history_dates.account_id
),

with_family as (
    select
        enriched.*,
        max(case when enriched.has_open_opportunity or enriched.is_customer then 1 else 0 end)
            over (partition by enriched.family_id) = 1 as is_family_converted,
        min(enriched.first_open_opportunity_date) over (partition by enriched.family_id)
            as family_first_open_opportunity_date,
        {{ dbt.datediff('enriched.last_touch_by_owner_date', as_of_date(), 'day') }}
            as days_since_owner_touch,
        {{ dbt.datediff('enriched.distribution_date', as_of_date(), 'day') }}
            as days_since_distribution
    from enriched
),

decided as (
    select
        *,
        case
            when has_open_opportunity or is_customer then 'converted'
            when owner_kind is null then 'excluded'
            when owner_kind in ('non_book', 'inactive') then 'excluded'
            {%- if family_rule == 'exclude_family' %}
            when is_family_converted then 'converted'
            {%- endif %}
            when owner_kind = 'pool' and book_status = 'retired' then 'retired'
            when owner_kind = 'pool' and book_status = 'review' then 'review'
            when owner_kind = 'pool' and rest_until_date >= {{ as_of_date() }} then 'resting'
            when owner_kind = 'pool' then 'ready'
            when days_since_owner_touch between 0 and {{ window }} then 'working'
            when days_since_distribution between 0 and {{ grace }} then 'working'
            else 'stale'
        end as state,
        case
            when has_open_opportunity then 'open_opportunity'
            when is_customer then 'customer'
            when owner_kind is null then 'unknown_owner'
            when owner_kind = 'non_book' then 'non_book_owner'
            when owner_kind = 'inactive' then 'inactive_owner'
            {%- if family_rule == 'exclude_family' %}
            when is_family_converted then 'family_converted'
            {%- endif %}
            when owner_kind = 'pool' and book_status = 'retired' then 'retired_in_crm'
            when owner_kind = 'pool' and book_status = 'review' then 'review_in_crm'
            when owner_kind = 'pool' and rest_until_date >= {{ as_of_date() }} then 'rest_until'
            when owner_kind = 'pool' and rest_until_date is not null then 'rest_ended'
            when owner_kind = 'pool' then 'in_pool'
            when days_since_owner_touch between 0 and {{ window }} then 'touched_within_window'
            when days_since_distribution between 0 and {{ grace }} then 'grace_after_distribution'
            else 'no_touch_in_window'
        end as state_reason
    from with_family
),

dated as (
    select
        account_id,
        owner_id,
        owner_kind,
        family_id,
        has_open_opportunity,
        is_customer,
        is_family_converted,
        state,
        state_reason,
        case
            when state = 'excluded' then coalesce(owner_changed_date, created_date)
            when state = 'converted' then coalesce(
                first_open_opportunity_date, family_first_open_opportunity_date, created_date)
            when state in ('retired', 'review') then coalesce(
                status_changed_date, return_date, owner_changed_date, created_date)
            when state = 'resting' then coalesce(
                return_date, status_changed_date, owner_changed_date, created_date)
            when state = 'ready' and rest_until_date is not null
                then cast({{ dbt.dateadd('day', 1, 'rest_until_date') }} as date)
            when state = 'ready' then coalesce(status_changed_date, owner_changed_date, created_date)
            when state = 'working' then coalesce(distribution_date, owner_changed_date, created_date)
            when last_touch_by_owner_date is null and distribution_date is null
                then coalesce(owner_changed_date, created_date)
            when distribution_date is null or last_touch_by_owner_date
                > cast({{ dbt.dateadd('day', grace ~ ' - ' ~ window, 'distribution_date') }} as date)
                then cast({{ dbt.dateadd('day', window ~ ' + 1', 'last_touch_by_owner_date') }} as date)
            else cast({{ dbt.dateadd('day', grace ~ ' + 1', 'distribution_date') }} as date)
        end as state_entered_date
    from decided
)

select * from dated
