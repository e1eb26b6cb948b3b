{#- Public (R14): what each distribution batch became. Grain: one row per batch = one run
    (batch_run_id) that handed accounts to reps (decision kinds distribute, signal_route,
    swap) that stand (book_decisions_standing: applied, or this run's own; a gift a re-run
    superseded, or one held or failed, never reached the rep). For N in 7/14/30: touched_Nd = accounts with a meaningful touch by the receiving rep
    0..N days after the distribution date; converted_Nd = accounts with an opportunity created
    0..N days after it. A share is null until the batch is N days old on the as-of date
    (is_complete_Nd), so young batches are not read as failures. -#}
{%- set horizons = [7, 14, 30] -%}
with

book_decisions as (
    select * from {{ ref('book_decisions_standing') }}
),

activities as (
    select * from {{ ref('int_activities_classified') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

distributed as (
    select
        run_id as batch_run_id,
        min(as_of_date) as distribution_date,
        account_id,
        min(to_owner_id) as rep_id
    from book_decisions
    where decision_kind in ('distribute', 'signal_route', 'swap')
    group by run_id, account_id
),

first_touches as (
    select
        distributed.batch_run_id,
        distributed.account_id,
        min({{ dbt.datediff('distributed.distribution_date', 'activities.activity_date', 'day') }})
            as days_to_touch
    from distributed
    inner join activities
        on distributed.account_id = activities.account_id
        and distributed.rep_id = activities.owner_id
    where activities.is_meaningful
        and activities.activity_date >= distributed.distribution_date
    group by distributed.batch_run_id, distributed.account_id
),

first_opportunities as (
    select
        distributed.batch_run_id,
        distributed.account_id,
        min({{ dbt.datediff('distributed.distribution_date', 'opportunities.created_date', 'day') }})
            as days_to_opportunity
    from distributed
    inner join opportunities
        on distributed.account_id = opportunities.account_id
    where opportunities.created_date >= distributed.distribution_date
        and opportunities.created_date <= {{ as_of_date() }}
    group by distributed.batch_run_id, distributed.account_id
),

outcomes as (
    select
        distributed.batch_run_id,
        distributed.distribution_date,
        distributed.account_id,
        distributed.rep_id,
        first_touches.days_to_touch,
        first_opportunities.days_to_opportunity
    from distributed
    left join first_touches
        on distributed.batch_run_id = first_touches.batch_run_id
        and distributed.account_id = first_touches.account_id
    left join first_opportunities
        on distributed.batch_run_id = first_opportunities.batch_run_id
        and distributed.account_id = first_opportunities.account_id
),

batches as (
    select
        batch_run_id,
        min(distribution_date) as distribution_date,
        count(*) as accounts_distributed,
        count(distinct rep_id) as reps_receiving,
        {%- for days in horizons %}
        count(case when days_to_touch <= {{ days }} then 1 end) as touched_{{ days }}d,
        count(case when days_to_opportunity <= {{ days }} then 1 end)
            as converted_{{ days }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from outcomes
    group by batch_run_id
),

final as (
    select
        batch_run_id,
        distribution_date,
        {{ dbt.datediff('distribution_date', as_of_date(), 'day') }} as batch_age_days,
        accounts_distributed,
        reps_receiving,
        {%- for days in horizons %}
        {{ dbt.datediff('distribution_date', as_of_date(), 'day') }} >= {{ days }}
            as is_complete_{{ days }}d,
        touched_{{ days }}d,
        case when {{ dbt.datediff('distribution_date', as_of_date(), 'day') }} >= {{ days }}
            then {{ safe_ratio('touched_' ~ days ~ 'd', 'accounts_distributed') }}
        end as touched_{{ days }}d_share,
        converted_{{ days }}d,
        case when {{ dbt.datediff('distribution_date', as_of_date(), 'day') }} >= {{ days }}
            then {{ safe_ratio('converted_' ~ days ~ 'd', 'accounts_distributed') }}
        end as converted_{{ days }}d_share,
        {%- endfor %}
        {{ mart_run_id() }} as run_id
    from batches
)

select * from final
