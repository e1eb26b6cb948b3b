{#- Pool users (owner_kind 'pool': named in policy.crm.pool_users or role Pool; active only)
    and how many accounts each owns before this run's decisions. -#}
with

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

users as (
    select * from {{ ref('int_users_classified') }}
),

loads as (
    select
        owner_id as pool_user_id,
        count(*) as pool_load
    from accounts
    group by owner_id
),

final as (
    select
        users.user_id as pool_user_id,
        coalesce(loads.pool_load, 0) as pool_load
    from users
    left join loads
        on users.user_id = loads.pool_user_id
    where users.owner_kind = 'pool' and users.is_active
)

select * from final
