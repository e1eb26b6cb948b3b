{#- Public (R12): ownership distribution. Grain: one row per (owner, segment) over every live
    account - pool users, reps and non-book owners alike - with how much of the segment's
    NBTAM the owner holds and how much of it was engaged in the last 30 days. -#}
with

accounts as (
    select * from {{ ref('accounts') }}
),

owned as (
    select
        coalesce(owner_id, 'unknown') as owner_id,
        max(owner_name) as owner_name,
        max(owner_kind) as owner_kind,
        coalesce(segment_key, 'unsegmented') as segment_key,
        count(*) as accounts,
        count(case when not is_customer and state <> 'excluded' then 1 end)
            as nbtam_accounts,
        count(case when not is_customer and state <> 'excluded' and touches_30d > 0 then 1 end)
            as nbtam_engaged_30d,
        count(case when state in ('working', 'stale') then 1 end) as in_book_accounts,
        count(case when state = 'stale' then 1 end) as stale_accounts
    from accounts
    group by coalesce(owner_id, 'unknown'), coalesce(segment_key, 'unsegmented')
),

final as (
    select
        {{ dbt.concat(['owner_id', "':'", 'segment_key']) }} as ownership_id,
        owner_id,
        owner_name,
        owner_kind,
        segment_key,
        accounts,
        nbtam_accounts,
        nbtam_engaged_30d,
        in_book_accounts,
        stale_accounts,
        {{ safe_ratio('nbtam_accounts',
            'sum(nbtam_accounts) over (partition by segment_key)') }} as share_of_segment_nbtam,
        {{ mart_run_id() }} as run_id
    from owned
)

select * from final
