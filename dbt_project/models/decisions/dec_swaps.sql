{#- Step 5 (R10): a swap is a return plus an immediate replacement for the same rep in the same
    run. Returns free slots (step 1) that routing/top-off refill (steps 3-4); this model pairs
    them: the rep's k-th accepted return (by account_id) with its k-th new account (by pick).
    The swap row is explanatory: the account moves through its distribute/signal_route row,
    and linked_account_id names the returned account it replaces. -#}
with

returns as (
    select * from {{ ref('dec_returns') }}
),

signal_routes as (
    select * from {{ ref('dec_signal_routes') }}
),

distributions as (
    select * from {{ ref('dec_distributions') }}
),

returned as (
    select
        from_owner_id as rep_id,
        account_id as returned_account_id,
        row_number() over (partition by from_owner_id order by account_id) as pair_number
    from returns
    where decision_kind = 'return' and from_state in ('working', 'stale')
),

received as (
    select
        new_accounts.*,
        row_number() over (
            partition by new_accounts.to_owner_id
            order by new_accounts.step_order, new_accounts.pick_number, new_accounts.account_id
        ) as pair_number
    from (
        select
            *,
            1 as step_order
        from signal_routes
        where decision_kind = 'signal_route'
        union all
        select
            *,
            2 as step_order
        from distributions
    ) as new_accounts
),

final as (
    select
        received.run_id,
        received.as_of_date,
        received.account_id,
        'swap' as decision_kind,
        received.from_owner_id,
        received.to_owner_id,
        received.from_state,
        received.to_state,
        'swap' as reason,
        'R10 swap: replaces returned account ' || returned.returned_account_id as rule,
        received.priority_score,
        received.fit_score,
        received.timing_score,
        received.segment_key,
        received.slot_kind,
        received.slot_number,
        received.round_number,
        received.pick_number,
        received.rest_until_date,
        returned.returned_account_id as linked_account_id,
        received.policy_version
    from received
    inner join returned
        on
            received.to_owner_id = returned.rep_id
            and received.pair_number = returned.pair_number
)

select * from final
