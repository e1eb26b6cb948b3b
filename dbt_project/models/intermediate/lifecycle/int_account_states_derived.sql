{#- Exactly one R1 state per account for the as-of date, with the rule that decided it and the
    date the account entered it. Rules, first match wins:
      held out (books.held_out_accounts)           -> excluded (a holdout experiment's control)
      open opportunity or Type = Customer           -> converted (whoever owns it)
      owner unknown / non-book / inactive rep       -> excluded
      family member converted (exclude_family rule) -> converted
      pool owner: Book_Status__c retired            -> retired
                  Book_Status__c review             -> review
                  Rest_Until__c >= as-of date       -> resting (ready the day after)
                  otherwise                         -> ready
      rep owner:  meaningful touch by the owner within working_window_days -> working
                  distributed within grace_period_days                     -> working
                  assigned by hand within grace_period_days                -> working
                  otherwise                                                -> stale
    An owner change is by hand when its AccountHistory row was made by a user other than
    people.manual_changes.write_back_users (dynamic-books' own CRM user); owner_source says who
    set the current owner ('dynamic_books', 'manual', or null when nobody can tell).
    A customer or open opportunity is converted even under a non-book owner (it is outside the
    books either way, and converted says more). Retired and review are checked before resting: a permanent or bad-data verdict is not
    lifted by the end of a rest. The entered date is derived from CRM dates and field history
    (approximate where the CRM keeps no history, see column docs). -#}
{%- set window = policy_number('lifecycle.working_window_days') -%}
{%- set grace = policy_number('lifecycle.grace_period_days') -%}
{%- set family_rule = policy_get('lifecycle.converted_family_rule') -%}
{%- set write_back_users = policy_string_list('people.manual_changes.write_back_users') -%}
{%- set held_out = policy_held_out_accounts() -%}
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

crm_users as (
    select * from {{ ref('stg_salesforce__users') }}
),

owner_changes_ranked as (
    select
        account_history.account_id,
        account_history.created_by_id,
        account_history.old_value,
        account_history.new_value,
        account_history.changed_date,
        coalesce(
            lower(crm_users.username) in ({{ write_back_users | lower }})
            or crm_users.email in ({{ write_back_users | lower }}),
            false
        ) as is_write_back,
        row_number() over (
            partition by account_history.account_id
            order by account_history.created_at desc, account_history.account_history_id desc
        ) as change_rank
    from account_history
    left join crm_users
        on account_history.created_by_id = crm_users.user_id
    where account_history.field_name = 'OwnerId'
),

last_owner_changes as (
    select *
    from owner_changes_ranked
    where change_rank = 1
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
        history_dates.status_changed_date,
        case
            when last_owner_changes.account_id is null and accounts.distribution_date is not null
                then 'dynamic_books'
            when last_owner_changes.new_value = accounts.owner_id
                and last_owner_changes.is_write_back then 'dynamic_books'
            when last_owner_changes.new_value = accounts.owner_id then 'manual'
        end as owner_source,
        last_owner_changes.changed_date as last_owner_change_date,
        last_owner_changes.created_by_id as last_owner_changed_by_id,
        last_owner_changes.old_value as last_owner_change_from_id
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
    left join last_owner_changes
        on accounts.account_id = last_owner_changes.account_id
),

with_source as (
    select
        enriched.*,
        case when enriched.owner_source = 'manual' then enriched.last_owner_change_date end
            as manual_change_date,
        case when enriched.owner_source = 'manual' then enriched.last_owner_changed_by_id end
            as manual_changed_by_id,
        case when enriched.owner_source = 'manual' then enriched.last_owner_change_from_id end
            as manual_from_owner_id
    from enriched
),

with_family as (
    select
        with_source.*,
        max(case when with_source.has_open_opportunity or with_source.is_customer then 1 else 0 end)
            over (partition by with_source.family_id) = 1 as is_family_converted,
        min(with_source.first_open_opportunity_date) over (partition by with_source.family_id)
            as family_first_open_opportunity_date,
        {{ dbt.datediff('with_source.last_touch_by_owner_date', as_of_date(), 'day') }}
            as days_since_owner_touch,
        {{ dbt.datediff('with_source.distribution_date', as_of_date(), 'day') }}
            as days_since_distribution,
        {{ dbt.datediff('with_source.manual_change_date', as_of_date(), 'day') }}
            as days_since_manual_change
    from with_source
),

decided as (
    select
        *,
        case
            when account_id in ({{ held_out }}) then 'excluded'
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
            when days_since_manual_change between 0 and {{ grace }} then 'working'
            else 'stale'
        end as state,
        case
            when account_id in ({{ held_out }}) then 'held_out'
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
            when days_since_manual_change between 0 and {{ grace }}
                then 'grace_after_manual_assign'
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
        owner_source,
        manual_change_date,
        manual_changed_by_id,
        manual_from_owner_id,
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
            when state_reason = 'grace_after_manual_assign' then manual_change_date
            when state = 'working' then coalesce(distribution_date, owner_changed_date, created_date)
            when state = 'stale' and last_touch_by_owner_date is null
                and manual_change_date is not null
                then cast({{ dbt.dateadd('day', grace ~ ' + 1', 'manual_change_date') }} as date)
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
