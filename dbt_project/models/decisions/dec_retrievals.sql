{#- Step 2 (R8): stale accounts in a rep's book go back to the pool and rest. Accounts with an
    open opportunity are `converted`, never retrieved; they get a hoarding_flag (reported, never
    applied) when an open opportunity's close date was pushed at least
    var('hoarding_min_close_date_pushes', 3) times (Close_Date_Push_Count__c) and the owner has
    not touched the account within the working window. Retrieved accounts go to the
    least-loaded pool user after this run's returns and releases. An account a person assigned
    by hand within lifecycle.grace_period_days (manual_change_date) is never retrieved, nor one
    this run releases (dec_releases). Out-of-cycle runs ('signals', 'returns') neither
    retrieve nor flag. -#}
{%- set min_pushes = sql_number(
    var('hoarding_min_close_date_pushes', 3), 'var hoarding_min_close_date_pushes') -%}
with

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

returns as (
    select * from {{ ref('dec_returns') }}
),

releases as (
    select * from {{ ref('dec_releases') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

pool_loads_before as (
    select * from {{ ref('dec_pool_loads') }}
),

returns_per_pool_user as (
    select
        moved.to_owner_id,
        count(*) as returned_count
    from (
        select returns.to_owner_id
        from returns
        where returns.decision_kind = 'return'
        union all
        select releases.to_owner_id
        from releases
        where releases.decision_kind = 'release'
    ) as moved
    group by moved.to_owner_id
),

pool_loads as (
    select
        pool_loads_before.pool_user_id,
        pool_loads_before.pool_load + coalesce(returns_per_pool_user.returned_count, 0) as pool_load
    from pool_loads_before
    left join returns_per_pool_user
        on pool_loads_before.pool_user_id = returns_per_pool_user.to_owner_id
),

pushed_opportunities as (
    select
        account_id,
        max(close_date_push_count) as max_close_date_pushes
    from opportunities
    where not is_closed
    group by account_id
),

retrievable as (
    select accounts.account_id
    from accounts
    cross join run_context
    where
        run_context.cycle_mode = 'full'
        and accounts.state = 'stale'
        and accounts.owner_kind = 'rep'
        and not coalesce(accounts.has_open_opportunity, false)
        and accounts.account_id not in (
            select returns.account_id
            from returns
            where returns.decision_kind = 'return'
        )
        and accounts.account_id not in (
            select releases.account_id
            from releases
            where releases.decision_kind = 'release'
        )
        and coalesce(
            accounts.manual_change_date
            < {{ dbt.dateadd('day', -1 * policy_get('lifecycle.grace_period_days'), 'run_context.as_of_date') }},
            true
        )
),

{{ decisions_pool_fill_ctes('pool_assignment', 'retrievable', 'pool_loads') }},

retrievals as (
    select
        run_context.run_id,
        run_context.as_of_date,
        accounts.account_id,
        'retrieve' as decision_kind,
        accounts.owner_id as from_owner_id,
        pool_assignment.pool_user_id as to_owner_id,
        accounts.state as from_state,
        'resting' as to_state,
        'stale' as reason,
        'R8 retrieval: no meaningful touch by the owner within '
        || '{{ policy_get("lifecycle.working_window_days") }} days' as rule,
        accounts.priority_score,
        accounts.fit_score,
        accounts.timing_score,
        accounts.segment_key,
        {{ decisions_owned_slot_kind('accounts') }} as slot_kind,
        cast({{ dbt.dateadd('day', policy_number('lifecycle.rest_days.retrieved'), 'run_context.as_of_date') }}
            as date) as rest_until_date
    from accounts
    inner join pool_assignment
        on accounts.account_id = pool_assignment.account_id
    cross join run_context
),

hoarding_suspects as (
    select
        run_context.run_id,
        run_context.as_of_date,
        accounts.account_id,
        'hoarding_flag' as decision_kind,
        accounts.owner_id as from_owner_id,
        accounts.owner_id as to_owner_id,
        accounts.state as from_state,
        accounts.state as to_state,
        'close_date_pushed_untouched' as reason,
        'R8/R14 hoarding: open opportunity close date pushed '
        || cast(pushed_opportunities.max_close_date_pushes as {{ dbt.type_string() }})
        || ' times, no meaningful touch by the owner within '
        || '{{ policy_get("lifecycle.working_window_days") }} days' as rule,
        accounts.priority_score,
        accounts.fit_score,
        accounts.timing_score,
        accounts.segment_key,
        cast(null as {{ dbt.type_string() }}) as slot_kind,
        cast(null as date) as rest_until_date
    from accounts
    inner join pushed_opportunities
        on accounts.account_id = pushed_opportunities.account_id
    cross join run_context
    where
        run_context.cycle_mode = 'full'
        and accounts.owner_kind = 'rep'
        and coalesce(accounts.has_open_opportunity, false)
        and pushed_opportunities.max_close_date_pushes >= {{ min_pushes }}
        and (
            accounts.last_touch_by_owner_date is null
            or accounts.last_touch_by_owner_date < {{ dbt.dateadd(
                'day', -1 * policy_get('lifecycle.working_window_days'), 'run_context.as_of_date') }}
        )
),

unioned as (
    select * from retrievals
    union all
    select * from hoarding_suspects
),

final as (
    select
        unioned.run_id,
        unioned.as_of_date,
        unioned.account_id,
        unioned.decision_kind,
        unioned.from_owner_id,
        unioned.to_owner_id,
        unioned.from_state,
        unioned.to_state,
        unioned.reason,
        unioned.rule,
        unioned.priority_score,
        unioned.fit_score,
        unioned.timing_score,
        unioned.segment_key,
        unioned.slot_kind,
        cast(null as {{ dbt.type_int() }}) as slot_number,
        cast(null as {{ dbt.type_int() }}) as round_number,
        unioned.rest_until_date,
        cast(null as {{ dbt.type_string() }}) as linked_account_id,
        run_context.policy_version
    from unioned
    cross join run_context
)

select * from final
