{#- Public (R13): activities per rep per week by type. Grain: one row per (book rep, week
    starting Monday-or-engine-default week start via dbt.date_trunc, activity type) for
    completed activities dated up to the as-of date; types in the CRM picklist's spelling. -#}
with

reps as (
    select * from {{ ref('reps') }}
),

activities as (
    select * from {{ ref('int_activities_classified') }}
),

rep_activities as (
    select
        activities.owner_id as rep_id,
        cast({{ dbt.date_trunc('week', 'activities.activity_date') }} as date) as week_start_date,
        {{ canonical_activity_type('activities.activity_type') }} as activity_type,
        activities.account_id,
        activities.is_meaningful
    from activities
    inner join reps
        on activities.owner_id = reps.rep_id
    where activities.activity_date is not null
        and activities.activity_date <= {{ as_of_date() }}
        and not activities.is_open
),

final as (
    select
        {{ dbt.concat(['rep_id', "':'", dbt.cast('week_start_date', dbt.type_string()),
                       "':'", 'activity_type']) }} as rep_week_type_id,
        rep_id,
        week_start_date,
        activity_type,
        count(*) as activities,
        count(case when is_meaningful then 1 end) as meaningful_touches,
        count(distinct case when is_meaningful then account_id end) as accounts_touched,
        {{ mart_run_id() }} as run_id
    from rep_activities
    group by rep_id, week_start_date, activity_type
)

select * from final
