{#- Public (R13): one row per book rep - activity and pipeline KPIs over the KPI window (the
    policy's working window, ending on the as-of date inclusive) and book productivity.
      activities: completed activities the rep logged (any type/source), by type.
      touches: meaningful touches (int_activities_classified.is_meaningful).
      touches_per_account / contacts_per_account: per account the rep touched in the window.
      book_productivity = share of the rep's book (working + stale accounts) touched by the rep
      within the working window - the same rule that keeps an account `working`. -#}
{%- set window = policy_number('lifecycle.working_window_days') -%}
{%- set types = ['Call', 'Email', 'Meeting', 'LinkedIn', 'Other'] -%}
with

reps as (
    select * from {{ ref('reps') }}
),

activities as (
    select * from {{ ref('int_activities_classified') }}
),

accounts as (
    select * from {{ ref('accounts') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

window_activities as (
    select
        owner_id as rep_id,
        account_id,
        contact_key,
        {{ canonical_activity_type('activity_type') }} as activity_type,
        is_meaningful
    from activities
    {#- A range on the column itself (not a day difference) lets the scan skip row groups
        outside the window: 0 <= days before the as-of date <= window - 1. #}
    where activity_date is not null
        and not is_open
        and activity_date between cast({{ dbt.dateadd('day', '1 - ' ~ window, as_of_date()) }} as date)
            and {{ as_of_date() }}
),

activity_kpis as (
    select
        rep_id,
        count(*) as activities,
        {%- for type in types %}
        count(case when activity_type = '{{ type }}' then 1 end)
            as {{ type | lower }}_activities,
        {%- endfor %}
        count(case when is_meaningful then 1 end) as meaningful_touches,
        count(distinct case when is_meaningful then account_id end) as accounts_touched,
        count(distinct case when is_meaningful and contact_key is not null
            then {{ dbt.concat(['account_id', "'|'", 'contact_key']) }} end)
            as account_contacts_touched,
        count(case when is_meaningful and activity_type = 'Meeting' then 1 end) as meetings
    from window_activities
    group by rep_id
),

opportunity_kpis as (
    select
        owner_id as rep_id,
        count(*) as opportunities_created
    from opportunities
    where {{ dbt.datediff('created_date', as_of_date(), 'day') }} between 0 and {{ window }} - 1
    group by owner_id
),

book_kpis as (
    select
        owner_id as rep_id,
        count(*) as book_size,
        count(case when {{ dbt.datediff('last_touch_by_owner_date', as_of_date(), 'day') }}
            between 0 and {{ window }} then 1 end) as book_worked
    from accounts
    where state in ('working', 'stale')
    group by owner_id
),

final as (
    select
        reps.rep_id,
        reps.rep_name,
        reps.role,
        reps.segment_key,
        reps.is_eligible,
        {{ window }} as kpi_window_days,
        coalesce(activity_kpis.activities, 0) as activities,
        coalesce(activity_kpis.activities, 0) * 7.0 / {{ window }} as activities_per_week,
        {%- for type in types %}
        coalesce(activity_kpis.{{ type | lower }}_activities, 0) * 7.0 / {{ window }}
            as {{ type | lower }}_activities_per_week,
        {%- endfor %}
        coalesce(activity_kpis.meaningful_touches, 0) as meaningful_touches,
        coalesce(activity_kpis.accounts_touched, 0) as accounts_touched,
        {{ safe_ratio('activity_kpis.meaningful_touches', 'activity_kpis.accounts_touched') }}
            as touches_per_account,
        {{ safe_ratio('activity_kpis.account_contacts_touched', 'activity_kpis.accounts_touched') }}
            as contacts_per_account,
        coalesce(activity_kpis.meetings, 0) as meetings,
        coalesce(opportunity_kpis.opportunities_created, 0) as opportunities_created,
        coalesce(book_kpis.book_size, 0) as book_size,
        coalesce(book_kpis.book_worked, 0) as book_worked,
        {{ safe_ratio('book_kpis.book_worked', 'book_kpis.book_size') }} as book_productivity,
        {{ as_of_date() }} as as_of_date,
        {{ mart_run_id() }} as run_id
    from reps
    left join activity_kpis
        on reps.rep_id = activity_kpis.rep_id
    left join opportunity_kpis
        on reps.rep_id = opportunity_kpis.rep_id
    left join book_kpis
        on reps.rep_id = book_kpis.rep_id
)

select * from final
