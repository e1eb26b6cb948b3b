{#- Public (R14): returns by rep and day for the managers' daily review. Grain: one row per
    (return date = as-of date of the run that applied it, rep who returned, return reason),
    from the returns that stand (book_decisions_standing: applied, or this run's own; a return
    a re-run superseded, or one held or failed, did not move the account), accepted returns
    only; an account counted once per day even if several runs of that day recorded it. -#}
with

book_decisions as (
    select * from {{ ref('book_decisions_standing') }}
),

users as (
    select * from {{ ref('int_users_classified') }}
),

returns as (
    select
        as_of_date as return_date,
        from_owner_id as rep_id,
        reason as return_reason,
        count(distinct account_id) as returned_accounts,
        count(distinct case when to_state = 'resting' then account_id end) as rested_accounts,
        count(distinct case when to_state = 'review' then account_id end) as review_accounts,
        count(distinct case when to_state = 'retired' then account_id end) as retired_accounts
    from book_decisions
    where decision_kind = 'return'
    group by as_of_date, from_owner_id, reason
),

final as (
    select
        {{ dbt.concat([dbt.cast('returns.return_date', dbt.type_string()), "':'",
                       "coalesce(returns.rep_id, 'unknown')", "':'", 'returns.return_reason']) }}
            as return_reason_day_id,
        returns.return_date,
        returns.rep_id,
        users.user_name as rep_name,
        returns.return_reason,
        returns.returned_accounts,
        returns.rested_accounts,
        returns.review_accounts,
        returns.retired_accounts,
        {{ safe_ratio('returns.returned_accounts',
            'sum(returns.returned_accounts) over (partition by returns.return_date, returns.rep_id)') }}
            as share_of_rep_day_returns,
        {{ mart_run_id() }} as run_id
    from returns
    left join users
        on returns.rep_id = users.user_id
)

select * from final
