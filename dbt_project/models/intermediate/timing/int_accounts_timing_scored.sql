{#- Timing score per account (R4): per signal type the strongest decayed signal, summed over
    types and capped at 100 (several signals of one type do not stack: ten intent rows are
    one surge). is_in_market / is_hot by the policy thresholds; the strongest signal type is
    the reason (ties broken by type name). The sum is exact (exact_sum), so the score, and
    which side of a threshold it falls, is the same in every build. -#}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

signals as (
    select * from {{ ref('int_account_signals_scored') }}
),

per_type as (
    select
        account_id,
        signal_type,
        max(decayed_score) as type_score,
        max(signal_date) as last_signal_date,
        count(*) as signal_count
    from signals
    group by account_id, signal_type
),

ranked_types as (
    select
        per_type.*,
        row_number() over (
            partition by per_type.account_id
            order by per_type.type_score desc, per_type.signal_type asc
        ) as strength_rank
    from per_type
),

totals as (
    select
        account_id,
        {{ exact_sum('type_score') }} as raw_timing_score,
        sum(signal_count) as signal_count
    from per_type
    group by account_id
),

final as (
    select
        accounts.account_id,
        case
            when coalesce(totals.raw_timing_score, 0) > 100 then 100
            else coalesce(totals.raw_timing_score, 0)
        end as timing_score,
        coalesce(totals.signal_count, 0) as signal_count,
        strongest.signal_type as strongest_signal,
        strongest.type_score as strongest_signal_score,
        strongest.last_signal_date as strongest_signal_date,
        coalesce(totals.raw_timing_score, 0)
            >= {{ policy_number('timing.in_market_threshold') }} as is_in_market,
        coalesce(totals.raw_timing_score, 0)
            >= {{ policy_number('timing.hot_threshold') }} as is_hot
    from accounts
    left join totals
        on accounts.account_id = totals.account_id
    left join ranked_types as strongest
        on accounts.account_id = strongest.account_id
        and strongest.strength_rank = 1
)

select * from final
