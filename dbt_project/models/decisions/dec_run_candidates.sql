{#- Explanation: every pool account this run considered for a rep, one row per account,
    with its unit, scores and rank in its segment, and either the decision that gave it to a rep
    or exactly one reason it stayed in the pool, the first that applies of:
      resting          it rests until rest_until_date (after a retrieval or a return);
      outside_segment  it has no segment, or no eligible rep works its segment;
      family_held      its family may not move (a member is in a rep's book, or a member is a
                       customer / has an open opportunity under converted_family_rule
                       exclude_family);
      not_hot          a signals run routes hot accounts only;
      no_capacity      no eligible rep of its segment has an open slot and new-account budget
                       left after this run;
      returned_by_rep  the only reps with room left returned it within its rest period;
      family_too_large its family needs more slots than any rep of the segment has left;
      lower_rank       reps had room, but the picks of this run ended above its rank (a
                       returns run only replaces returned accounts).
    A 'full' or 'returns' run considers every ready or resting pool account; a 'signals' run the
    pool accounts of its signals (and the family members routed with them). Rebuilt every run;
    run_candidates keeps the history. -#}
with

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

candidate_units as (
    select * from {{ ref('dec_candidate_units') }}
),

run_decisions as (
    select * from {{ ref('dec_run_decisions') }}
),

rep_capacity as (
    select * from {{ ref('dec_run_rep_capacity') }}
),

cycle_accounts as (
    select * from {{ ref('dec_cycle_accounts') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

chosen as (
    select
        account_id,
        decision_kind,
        to_owner_id,
        slot_kind,
        round_number,
        pick_number
    from run_decisions
    where decision_kind in ('signal_route', 'distribute')
),

considered as (
    select accounts.*
    from accounts
    cross join run_context
    where
        accounts.owner_kind = 'pool'
        and accounts.state in ('ready', 'resting')
        and (
            run_context.cycle_mode in ('full', 'returns')
            or accounts.account_id in (select cycle_accounts.account_id from cycle_accounts)
            or accounts.account_id in (select chosen.account_id from chosen)
        )
),

rep_room as (
    select
        rep_id,
        segment_key,
        least(open_slots - received_count, new_account_budget - received_count) as room_left
    from rep_capacity
    where is_eligible and segment_key is not null
),

segment_room as (
    select
        segment_key,
        count(*) as eligible_rep_count,
        max(room_left) as max_room_left
    from rep_room
    group by segment_key
),

unit_room as (
    select
        candidate_units.unit_id,
        max(
            case when rep_room.rep_id is distinct from candidate_units.blocked_rep_id
                then rep_room.room_left else 0 end
        ) as max_room_left_unblocked
    from candidate_units
    inner join rep_room
        on candidate_units.segment_key = rep_room.segment_key
    group by candidate_units.unit_id
),

ranked as (
    select
        considered.account_id,
        considered.state,
        considered.rest_until_date,
        considered.priority_score,
        considered.fit_score,
        considered.timing_score,
        considered.is_in_market,
        considered.is_hot,
        considered.strongest_signal,
        candidate_units.unit_id,
        candidate_units.unit_weight,
        candidate_units.is_unit_hot,
        candidate_units.blocked_rep_id,
        coalesce(candidate_units.segment_key, considered.segment_key) as segment_key,
        case
            when candidate_units.unit_id is not null
                then dense_rank() over (
                    partition by candidate_units.segment_key, candidate_units.unit_id is null
                    order by
                        coalesce(candidate_units.unit_priority_score, 0) desc,
                        candidate_units.unit_id
                )
        end as segment_rank
    from considered
    left join candidate_units
        on considered.account_id = candidate_units.account_id
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        ranked.account_id,
        ranked.unit_id,
        ranked.segment_key,
        ranked.state,
        ranked.priority_score,
        ranked.fit_score,
        ranked.timing_score,
        ranked.is_in_market,
        ranked.is_hot,
        ranked.strongest_signal,
        cast(ranked.segment_rank as {{ dbt.type_int() }}) as segment_rank,
        chosen.account_id is not null as is_chosen,
        chosen.decision_kind,
        chosen.to_owner_id,
        chosen.slot_kind,
        chosen.round_number,
        chosen.pick_number,
        case
            when chosen.account_id is not null then null
            when ranked.state = 'resting' then 'resting'
            when ranked.segment_key is null
                or coalesce(segment_room.eligible_rep_count, 0) = 0 then 'outside_segment'
            when ranked.unit_id is null then 'family_held'
            when run_context.cycle_mode = 'signals' and not ranked.is_unit_hot then 'not_hot'
            when coalesce(segment_room.max_room_left, 0) < 1 then 'no_capacity'
            when coalesce(unit_room.max_room_left_unblocked, 0) < 1 then 'returned_by_rep'
            when unit_room.max_room_left_unblocked < ranked.unit_weight then 'family_too_large'
            else 'lower_rank'
        end as exclusion_reason,
        ranked.blocked_rep_id,
        ranked.rest_until_date,
        run_context.policy_version
    from ranked
    cross join run_context
    left join chosen
        on ranked.account_id = chosen.account_id
    left join segment_room
        on ranked.segment_key = segment_room.segment_key
    left join unit_room
        on ranked.unit_id = unit_room.unit_id
)

select * from final
