{#- Every live account after this run's applied decisions (return, release, retrieve,
    signal_route, distribute): owner and state after steps 1-4. Each account has at most one
    applied decision (the steps act on disjoint sets: returns, releases and retrievals on owned
    accounts, routing and top-off on ready ones). The sync model diffs this against the CRM. -#}
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

retrievals as (
    select * from {{ ref('dec_retrievals') }}
),

signal_routes as (
    select * from {{ ref('dec_signal_routes') }}
),

distributions as (
    select * from {{ ref('dec_distributions') }}
),

applied as (
    select
        account_id,
        decision_kind,
        to_owner_id,
        to_state,
        reason,
        rest_until_date
    from returns
    where decision_kind = 'return'
    union all
    select
        account_id,
        decision_kind,
        to_owner_id,
        to_state,
        reason,
        rest_until_date
    from releases
    where decision_kind = 'release'
    union all
    select
        account_id,
        decision_kind,
        to_owner_id,
        to_state,
        reason,
        rest_until_date
    from retrievals
    where decision_kind = 'retrieve'
    union all
    select
        account_id,
        decision_kind,
        to_owner_id,
        to_state,
        reason,
        rest_until_date
    from signal_routes
    where decision_kind = 'signal_route'
    union all
    select
        account_id,
        decision_kind,
        to_owner_id,
        to_state,
        reason,
        rest_until_date
    from distributions
),

processed_requests as (
    select
        account_id,
        decision_kind as request_outcome
    from returns
),

final as (
    select
        accounts.account_id,
        accounts.family_id,
        accounts.segment_key,
        accounts.owner_id as owner_id_before,
        accounts.owner_kind as owner_kind_before,
        accounts.state as state_before,
        applied.decision_kind as applied_decision_kind,
        applied.reason as applied_reason,
        coalesce(applied.to_owner_id, accounts.owner_id) as owner_id,
        coalesce(applied.to_state, accounts.state) as state,
        case
            when applied.decision_kind in ('return', 'retrieve') then applied.rest_until_date
            when applied.decision_kind in ('signal_route', 'distribute', 'release') then null
            else accounts.rest_until_date
        end as rest_until_date,
        accounts.last_meaningful_touch_date,
        processed_requests.request_outcome,
        run_context.run_id,
        run_context.as_of_date
    from accounts
    cross join run_context
    left join applied
        on accounts.account_id = applied.account_id
    left join processed_requests
        on accounts.account_id = processed_requests.account_id
)

select * from final
