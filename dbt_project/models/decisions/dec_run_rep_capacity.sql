{#- Explanation: each book rep's capacity as this run saw it, one row per rep (eligible or
    not, with why): the target and its slot kinds, the book before the run split by the capacity
    model, what steps 1-2 freed, the open slots and new-account budget the routes and top-off
    used, what the rep received and the book after the run. Rebuilt every run (dry runs too);
    run_rep_capacity keeps the history. -#}
with

reps as (
    select * from {{ ref('int_reps_capacity') }}
),

capacity as (
    select * from {{ ref('dec_rep_capacity') }}
),

run_decisions as (
    select * from {{ ref('dec_run_decisions') }}
),

accounts_after as (
    select * from {{ ref('dec_accounts_after') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

rep_targets as (
    select
        rep_id,
        max(rep_name) as rep_name,
        max(role) as role,
        max(segment_key) as segment_key,
        max(case when is_eligible then 1 else 0 end) = 1 as is_eligible,
        max(ineligible_reason) as ineligible_reason,
        sum(case when slot_kind = 'fit' then capacity else 0 end) as fit_capacity,
        sum(case when slot_kind = 'intent' then capacity else 0 end) as intent_capacity,
        sum(case when slot_kind = 'fit' then current_count else 0 end) as fit_book_before,
        sum(case when slot_kind = 'intent' then current_count else 0 end) as intent_book_before
    from reps
    group by rep_id
),

rep_room as (
    select
        rep_id,
        sum(freed_count) as freed_count,
        sum(case when slot_kind = 'fit' then open_slots else 0 end) as fit_open_slots,
        sum(case when slot_kind = 'intent' then open_slots else 0 end) as intent_open_slots,
        max(max_new_per_run) as new_account_budget,
        max(rotation_position) as rotation_position
    from capacity
    group by rep_id
),

received as (
    select
        to_owner_id as rep_id,
        count(*) as received_count
    from run_decisions
    where decision_kind in ('signal_route', 'distribute')
    group by to_owner_id
),

books_after as (
    select
        owner_id as rep_id,
        count(*) as book_after
    from accounts_after
    where state in ('working', 'stale')
    group by owner_id
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        rep_targets.rep_id,
        rep_targets.rep_name,
        rep_targets.role,
        rep_targets.segment_key,
        rep_targets.is_eligible,
        rep_targets.ineligible_reason,
        rep_targets.fit_capacity + rep_targets.intent_capacity as target_size,
        rep_targets.fit_capacity,
        rep_targets.intent_capacity,
        rep_targets.fit_book_before + rep_targets.intent_book_before as book_before,
        rep_targets.fit_book_before,
        rep_targets.intent_book_before,
        coalesce(rep_room.freed_count, 0) as freed_count,
        coalesce(rep_room.fit_open_slots, 0) as fit_open_slots,
        coalesce(rep_room.intent_open_slots, 0) as intent_open_slots,
        coalesce(rep_room.fit_open_slots, 0) + coalesce(rep_room.intent_open_slots, 0)
            as open_slots,
        coalesce(rep_room.new_account_budget, 0) as new_account_budget,
        rep_room.rotation_position,
        coalesce(received.received_count, 0) as received_count,
        coalesce(books_after.book_after, 0) as book_after,
        run_context.policy_version
    from rep_targets
    cross join run_context
    left join rep_room
        on rep_targets.rep_id = rep_room.rep_id
    left join received
        on rep_targets.rep_id = received.rep_id
    left join books_after
        on rep_targets.rep_id = books_after.rep_id
)

select * from final
