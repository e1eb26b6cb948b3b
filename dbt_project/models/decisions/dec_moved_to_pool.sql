{#- The accounts this run's first steps send back to the pool (grain account_id): accepted
    returns, releases of departed owners' books and retrievals. The capacity model recounts books
    without them, the candidate units stop holding their families, and owner flags skip them. -#}
with

returns as (
    select * from {{ ref('dec_returns') }}
),

releases as (
    select * from {{ ref('dec_releases') }}
),

retrievals as (
    select * from {{ ref('dec_retrievals') }}
),

moved as (
    select
        account_id,
        decision_kind
    from returns
    where decision_kind = 'return'
    union all
    select
        account_id,
        decision_kind
    from releases
    where decision_kind = 'release'
    union all
    select
        account_id,
        decision_kind
    from retrievals
    where decision_kind = 'retrieve'
),

final as (
    select
        account_id,
        min(decision_kind) as decision_kind
    from moved
    group by account_id
)

select * from final
