{#- Step 2a: a rep who left the book (people.departures.release_on: owner_inactive,
    role_change, segment_change; out_of_office when out_of_office_release_days is set). Their
    accounts without an open opportunity and not customers go back to the pool at once, without
    rest (kind release, to the least-loaded pool user after this run's returns); the others stay
    with the owner and are flagged for the owner's manager (kind departure_flag, reported, never
    applied). Only 'full' runs release; an accepted return of the run wins over a release. -#}
{%- set release_on = policy_get('people.departures.release_on') -%}
{%- set away_days = policy_get('people.departures.out_of_office_release_days') -%}
{%- set reasons = release_on + (['out_of_office'] if away_days is not none else []) -%}
{%- set reason_literals = [] -%}
{%- for reason in reasons -%}
    {%- do reason_literals.append(sql_string_literal(reason)) -%}
{%- endfor -%}
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

pool_loads_before as (
    select * from {{ ref('dec_pool_loads') }}
),

returns_per_pool_user as (
    select
        to_owner_id,
        count(*) as returned_count
    from returns
    where decision_kind = 'return'
    group by to_owner_id
),

pool_loads as (
    select
        pool_loads_before.pool_user_id,
        pool_loads_before.pool_load + coalesce(returns_per_pool_user.returned_count, 0) as pool_load
    from pool_loads_before
    left join returns_per_pool_user
        on pool_loads_before.pool_user_id = returns_per_pool_user.to_owner_id
),

departed as (
    select
        accounts.*,
        coalesce(accounts.has_open_opportunity or accounts.is_customer, false) as stays
    from accounts
    cross join run_context
    where
        run_context.cycle_mode = 'full'
        and accounts.owner_departure_reason in (
            {{ reason_literals | join(', ') if reason_literals else "'__none__'" }}
        )
        and accounts.account_id not in (
            select returns.account_id
            from returns
            where returns.decision_kind = 'return'
        )
),

releasable as (
    select account_id
    from departed
    where not stays
),

{{ decisions_pool_fill_ctes('pool_assignment', 'releasable', 'pool_loads') }},

decided as (
    select
        departed.account_id,
        case when departed.stays then 'departure_flag' else 'release' end as decision_kind,
        departed.owner_id as from_owner_id,
        case
            when departed.stays then departed.owner_id else pool_assignment.pool_user_id
        end as to_owner_id,
        departed.state as from_state,
        case
            when departed.stays or departed.state = 'converted' then departed.state
            else 'ready'
        end as to_state,
        departed.owner_departure_reason as reason,
        case
            when departed.stays
                then 'Departure: owner left the book (' || departed.owner_departure_reason
                || '); open opportunity or customer stays, flagged for manager '
                || coalesce(departed.owner_manager_id, '(none)')
            else 'Departure: owner left the book (' || departed.owner_departure_reason
                || '); back to the pool without rest'
        end as rule,
        departed.priority_score,
        departed.fit_score,
        departed.timing_score,
        departed.segment_key,
        case
            when not departed.stays and departed.state in ('working', 'stale')
                then {{ decisions_owned_slot_kind('departed') }}
        end as slot_kind
    from departed
    left join pool_assignment
        on departed.account_id = pool_assignment.account_id
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        decided.account_id,
        decided.decision_kind,
        decided.from_owner_id,
        decided.to_owner_id,
        decided.from_state,
        decided.to_state,
        decided.reason,
        decided.rule,
        decided.priority_score,
        decided.fit_score,
        decided.timing_score,
        decided.segment_key,
        decided.slot_kind,
        cast(null as {{ dbt.type_int() }}) as slot_number,
        cast(null as {{ dbt.type_int() }}) as round_number,
        cast(null as date) as rest_until_date,
        cast(null as {{ dbt.type_string() }}) as linked_account_id,
        run_context.policy_version
    from decided
    cross join run_context
)

select * from final
