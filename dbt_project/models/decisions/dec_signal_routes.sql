{#- Step 3 (R7): hot units in the pool are routed, before the top-off, to eligible reps of
    their segment with open capacity (intent slots first, then fit), in fair snake rounds ordered
    by timing then priority. Hot accounts already in a rep's book get a signal_flag for the
    owner (reported, never applied). A rep walks its picks in order and keeps each unit that
    still fits its slots; a family that no longer fits is skipped and stays in the pool (never
    split) while the rep goes on with its next pick. A 'signals' run routes and flags only the
    accounts of its signals (a routed family holds one); a 'returns' run routes nothing. -#}
with

moved_to_pool as (
    select * from {{ ref('dec_moved_to_pool') }}
),

candidates_source as (
    select * from {{ ref('dec_candidate_units') }}
),

capacity as (
    select * from {{ ref('dec_rep_capacity') }}
),

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

cycle_accounts as (
    select * from {{ ref('dec_cycle_accounts') }}
),

in_scope_units as (
    select distinct candidates_source.unit_id
    from candidates_source
    cross join run_context
    where
        run_context.cycle_mode = 'full'
        or (
            run_context.cycle_mode = 'signals'
            and candidates_source.account_id in (
                select cycle_accounts.account_id from cycle_accounts
            )
        )
),

rep_slots as (
    select
        rep_id,
        max(segment_key) as segment_key,
        max(rotation_position) as rotation_position,
        sum(case when slot_kind = 'intent' then open_slots else 0 end) as intent_open,
        sum(case when slot_kind = 'fit' then open_slots else 0 end) as fit_open,
        max(max_new_per_run) as max_new_per_run
    from capacity
    group by rep_id
),

slots as (
    select
        rep_slots.*,
        case
            when rep_slots.intent_open + rep_slots.fit_open < rep_slots.max_new_per_run
                then rep_slots.intent_open + rep_slots.fit_open
            else rep_slots.max_new_per_run
        end as pick_limit
    from rep_slots
),

hot_units as (
    select distinct
        unit_id,
        segment_key,
        unit_weight,
        unit_priority_score,
        unit_timing_score,
        blocked_rep_id
    from candidates_source
    where
        is_unit_hot
        and unit_id in (select in_scope_units.unit_id from in_scope_units)
),

{{ decisions_fair_assign_ctes(
    'assigned', 'hot_units', 'slots',
    'coalesce(candidates.unit_timing_score, 0) desc, coalesce(candidates.unit_priority_score, 0) desc, candidates.unit_id'
) }},

allowed as (
    select assigned.*
    from assigned
    where assigned.blocked_rep_id is null or assigned.blocked_rep_id <> assigned.rep_id
),

walk_limits as (
    select
        rep_id,
        pick_limit as total_room,
        intent_open as first_room,
        fit_open as second_room
    from slots
),

{{ decisions_fit_walk_ctes('walked', 'allowed', 'walk_limits') }},

kept as (
    select
        allowed.*,
        case when walked.slot_order = 1 then 'intent' else 'fit' end as slot_kind
    from allowed
    inner join walked
        on allowed.rep_id = walked.rep_id and allowed.unit_id = walked.unit_id
),

routes as (
    select
        candidates_source.account_id,
        'signal_route' as decision_kind,
        candidates_source.owner_id as from_owner_id,
        kept.rep_id as to_owner_id,
        candidates_source.state as from_state,
        'working' as to_state,
        coalesce(candidates_source.strongest_signal, 'hot') as reason,
        'R7 signal routing: hot unit, pick ' || cast(kept.pick_number as {{ dbt.type_string() }})
        || ' in segment ' || kept.segment_key as rule,
        candidates_source.priority_score,
        candidates_source.fit_score,
        candidates_source.timing_score,
        kept.segment_key,
        kept.slot_kind,
        row_number() over (
            partition by kept.rep_id, kept.slot_kind
            order by kept.pick_number, candidates_source.member_order
        ) as slot_number,
        kept.round_number,
        kept.pick_number
    from kept
    inner join candidates_source
        on kept.unit_id = candidates_source.unit_id
),

flags as (
    select
        accounts.account_id,
        'signal_flag' as decision_kind,
        accounts.owner_id as from_owner_id,
        accounts.owner_id as to_owner_id,
        accounts.state as from_state,
        accounts.state as to_state,
        coalesce(accounts.strongest_signal, 'hot') as reason,
        'R7 signal on an owned account: flag the owner' as rule,
        accounts.priority_score,
        accounts.fit_score,
        accounts.timing_score,
        accounts.segment_key,
        cast(null as {{ dbt.type_string() }}) as slot_kind,
        cast(null as {{ dbt.type_bigint() }}) as slot_number,
        cast(null as {{ dbt.type_bigint() }}) as round_number,
        cast(null as {{ dbt.type_bigint() }}) as pick_number
    from accounts
    cross join run_context
    where
        accounts.is_hot
        and accounts.owner_kind = 'rep'
        and (
            run_context.cycle_mode = 'full'
            or (
                run_context.cycle_mode = 'signals'
                and accounts.account_id in (select cycle_accounts.account_id from cycle_accounts)
            )
        )
        and accounts.account_id not in (select moved_to_pool.account_id from moved_to_pool)
),

unioned as (
    select * from routes
    union all
    select * from flags
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        unioned.account_id,
        unioned.decision_kind,
        unioned.from_owner_id,
        unioned.to_owner_id,
        unioned.from_state,
        unioned.to_state,
        unioned.reason,
        unioned.rule,
        unioned.priority_score,
        unioned.fit_score,
        unioned.timing_score,
        unioned.segment_key,
        unioned.slot_kind,
        cast(unioned.slot_number as {{ dbt.type_int() }}) as slot_number,
        cast(unioned.round_number as {{ dbt.type_int() }}) as round_number,
        cast(unioned.pick_number as {{ dbt.type_int() }}) as pick_number,
        cast(null as date) as rest_until_date,
        cast(null as {{ dbt.type_string() }}) as linked_account_id,
        run_context.policy_version
    from unioned
    cross join run_context
)

select * from final
