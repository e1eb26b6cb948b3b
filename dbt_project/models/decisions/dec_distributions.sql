{#- Step 4 (R6): top-off. Each eligible rep's open slots per slot kind, after steps 1-3 and
    capped by what is left of its new-account budget, are filled in fair snake rounds (see
    decisions_fair_assign_ctes): first the intent slots (in-market units only, by timing then
    priority), then the fit slots (by priority) from the units still in the pool. A rep never
    takes more than its total room (capacity minus book after steps 1-2), so an intent slot
    whose account cooled down cannot make the book grow past its target. A unit takes
    one pick and one slot per member; a rep walks its picks in order and keeps each unit that
    still fits, so a family that no longer fits is skipped (it stays in the pool, never split)
    and the rep goes on with its next pick. Only 'full' runs top off; a 'returns' run only
    replaces (swap, R10) a rep's accepted returns of the run, one new account per return at
    most; a 'signals' run distributes nothing. -#}
with

candidates_source as (
    select * from {{ ref('dec_candidate_units') }}
),

capacity as (
    select * from {{ ref('dec_rep_capacity') }}
),

signal_routes as (
    select * from {{ ref('dec_signal_routes') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

returns as (
    select * from {{ ref('dec_returns') }}
),

returned_count as (
    select
        from_owner_id as rep_id,
        count(*) as returned_count
    from returns
    where decision_kind = 'return'
    group by from_owner_id
),

routed_use as (
    select
        to_owner_id as rep_id,
        sum(case when slot_kind = 'intent' then 1 else 0 end) as intent_used,
        sum(case when slot_kind = 'fit' then 1 else 0 end) as fit_used
    from signal_routes
    where decision_kind = 'signal_route'
    group by to_owner_id
),

rep_budget_full as (
    select
        capacity.rep_id,
        max(capacity.segment_key) as segment_key,
        max(capacity.rotation_position) as rotation_position,
        sum(case when capacity.slot_kind = 'intent' then capacity.open_slots else 0 end)
        - max(coalesce(routed_use.intent_used, 0)) as intent_open,
        sum(case when capacity.slot_kind = 'fit' then capacity.open_slots else 0 end)
        - max(coalesce(routed_use.fit_used, 0)) as fit_open,
        case
            when max(capacity.max_new_per_run)
                < sum(capacity.capacity) - sum(capacity.current_count_after)
                then max(capacity.max_new_per_run)
            when sum(capacity.capacity) - sum(capacity.current_count_after) > 0
                then sum(capacity.capacity) - sum(capacity.current_count_after)
            else 0
        end
        - max(coalesce(routed_use.intent_used, 0) + coalesce(routed_use.fit_used, 0))
        as budget_left
    from capacity
    left join routed_use
        on capacity.rep_id = routed_use.rep_id
    group by capacity.rep_id
),

rep_budget as (
    select
        rep_budget_full.rep_id,
        rep_budget_full.segment_key,
        rep_budget_full.rotation_position,
        rep_budget_full.intent_open,
        rep_budget_full.fit_open,
        case
            when run_context.cycle_mode = 'full' then rep_budget_full.budget_left
            when run_context.cycle_mode = 'returns'
                and coalesce(returned_count.returned_count, 0) < rep_budget_full.budget_left
                then coalesce(returned_count.returned_count, 0)
            when run_context.cycle_mode = 'returns' then rep_budget_full.budget_left
            else 0
        end as budget_left
    from rep_budget_full
    cross join run_context
    left join returned_count
        on rep_budget_full.rep_id = returned_count.rep_id
),

intent_slots as (
    select
        rep_id,
        segment_key,
        rotation_position,
        case when intent_open < budget_left then intent_open else budget_left end as pick_limit
    from rep_budget
),

pool_units as (
    select distinct
        unit_id,
        segment_key,
        unit_weight,
        unit_priority_score,
        unit_timing_score,
        case when is_unit_in_market then 1 else 0 end as unit_in_market,
        blocked_rep_id
    from candidates_source
    where unit_id not in (
        select routed_candidates.unit_id
        from candidates_source as routed_candidates
        inner join signal_routes
            on
                routed_candidates.account_id = signal_routes.account_id
                and signal_routes.decision_kind = 'signal_route'
    )
),

intent_units as (
    select *
    from pool_units
    where unit_in_market = 1
),

{{ decisions_fair_assign_ctes(
    'intent_assigned', 'intent_units', 'intent_slots',
    'candidates.unit_in_market desc, coalesce(candidates.unit_timing_score, 0) desc, '
    ~ 'coalesce(candidates.unit_priority_score, 0) desc, candidates.unit_id'
) }},

intent_allowed as (
    select intent_assigned.*
    from intent_assigned
    where
        intent_assigned.blocked_rep_id is null
        or intent_assigned.blocked_rep_id <> intent_assigned.rep_id
),

intent_limits as (
    select
        rep_id,
        pick_limit as total_room,
        pick_limit as first_room,
        0 as second_room
    from intent_slots
),

{{ decisions_fit_walk_ctes('intent_walked', 'intent_allowed', 'intent_limits') }},

intent_kept as (
    select intent_allowed.*
    from intent_allowed
    inner join intent_walked
        on
            intent_allowed.rep_id = intent_walked.rep_id
            and intent_allowed.unit_id = intent_walked.unit_id
),

intent_use as (
    select
        rep_id,
        sum(unit_weight) as intent_used
    from intent_kept
    group by rep_id
),

fit_slots as (
    select
        rep_budget.rep_id,
        rep_budget.segment_key,
        rep_budget.rotation_position,
        case
            when rep_budget.fit_open < rep_budget.budget_left - coalesce(intent_use.intent_used, 0)
                then rep_budget.fit_open
            else rep_budget.budget_left - coalesce(intent_use.intent_used, 0)
        end as pick_limit
    from rep_budget
    left join intent_use
        on rep_budget.rep_id = intent_use.rep_id
),

fit_units as (
    select *
    from pool_units
    where unit_id not in (select intent_kept.unit_id from intent_kept)
),

{{ decisions_fair_assign_ctes(
    'fit_assigned', 'fit_units', 'fit_slots',
    'coalesce(candidates.unit_priority_score, 0) desc, candidates.unit_id'
) }},

fit_allowed as (
    select fit_assigned.*
    from fit_assigned
    where fit_assigned.blocked_rep_id is null or fit_assigned.blocked_rep_id <> fit_assigned.rep_id
),

fit_limits as (
    select
        rep_id,
        pick_limit as total_room,
        pick_limit as first_room,
        0 as second_room
    from fit_slots
),

{{ decisions_fit_walk_ctes('fit_walked', 'fit_allowed', 'fit_limits') }},

fit_kept as (
    select fit_allowed.*
    from fit_allowed
    inner join fit_walked
        on fit_allowed.rep_id = fit_walked.rep_id and fit_allowed.unit_id = fit_walked.unit_id
),

kept as (
    select
        unit_id,
        rep_id,
        segment_key,
        round_number,
        pick_number,
        candidate_rank,
        'intent' as slot_kind
    from intent_kept
    union all
    select
        unit_id,
        rep_id,
        segment_key,
        round_number,
        pick_number,
        candidate_rank,
        'fit' as slot_kind
    from fit_kept
),

routed_offsets as (
    select
        to_owner_id as rep_id,
        slot_kind,
        count(*) as used_before
    from signal_routes
    where decision_kind = 'signal_route'
    group by to_owner_id, slot_kind
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        candidates_source.account_id,
        'distribute' as decision_kind,
        candidates_source.owner_id as from_owner_id,
        kept.rep_id as to_owner_id,
        candidates_source.state as from_state,
        'working' as to_state,
        case
            when kept.slot_kind = 'intent' and candidates_source.is_unit_in_market
                then 'top_off_intent: ' || coalesce(candidates_source.strongest_signal, 'in_market')
            else 'top_off_' || kept.slot_kind
        end as reason,
        'R6 top-off: ' || kept.slot_kind || ' pick '
        || cast(kept.pick_number as {{ dbt.type_string() }})
        || ', round ' || cast(kept.round_number as {{ dbt.type_string() }})
        || ' in segment ' || kept.segment_key as rule,
        candidates_source.priority_score,
        candidates_source.fit_score,
        candidates_source.timing_score,
        kept.segment_key,
        kept.slot_kind,
        cast(
            coalesce(routed_offsets.used_before, 0)
            + row_number() over (
                partition by kept.rep_id, kept.slot_kind
                order by kept.pick_number, candidates_source.member_order
            ) as {{ dbt.type_int() }}
        ) as slot_number,
        cast(kept.round_number as {{ dbt.type_int() }}) as round_number,
        cast(kept.pick_number as {{ dbt.type_int() }}) as pick_number,
        cast(null as date) as rest_until_date,
        cast(null as {{ dbt.type_string() }}) as linked_account_id,
        run_context.policy_version
    from kept
    inner join candidates_source
        on kept.unit_id = candidates_source.unit_id
    left join routed_offsets
        on kept.rep_id = routed_offsets.rep_id and kept.slot_kind = routed_offsets.slot_kind
    cross join run_context
)

select * from final
