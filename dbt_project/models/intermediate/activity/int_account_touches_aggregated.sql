{#- Meaningful-touch recency and volume per account: last touch overall and by the current
    owner, touches and distinct contacts touched in the last 30/60/90 days. "Within the last N
    days" means 0 <= days before the as-of date <= N, both ends inclusive, the same rule as the
    working window of int_account_states_derived (a touch exactly 30 days ago counts in
    touches_30d and keeps a 30-day-window account working). Accounts without touches get zeros
    and null dates. -#}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

activities as (
    select * from {{ ref('int_activities_classified') }}
),

touches as (
    select
        activities.account_id,
        activities.activity_id,
        activities.contact_key,
        activities.activity_date,
        activities.owner_id = accounts.owner_id as is_by_current_owner,
        {{ dbt.datediff('activities.activity_date', as_of_date(), 'day') }} as age_days
    from activities
    inner join accounts
        on activities.account_id = accounts.account_id
    where activities.is_meaningful
),

aggregated as (
    select
        account_id,
        max(activity_date) as last_meaningful_touch_date,
        max(case when is_by_current_owner then activity_date end) as last_touch_by_owner_date,
        {%- for days in [30, 60, 90] %}
        sum(case when age_days between 0 and {{ days }} then 1 else 0 end) as touches_{{ days }}d,
        count(distinct case when age_days between 0 and {{ days }} then contact_key end)
            as contacts_touched_{{ days }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from touches
    group by account_id
),

final as (
    select
        accounts.account_id,
        aggregated.last_meaningful_touch_date,
        aggregated.last_touch_by_owner_date,
        {%- for days in [30, 60, 90] %}
        coalesce(aggregated.touches_{{ days }}d, 0) as touches_{{ days }}d,
        coalesce(aggregated.contacts_touched_{{ days }}d, 0) as contacts_touched_{{ days }}d
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from accounts
    left join aggregated
        on accounts.account_id = aggregated.account_id
)

select * from final
