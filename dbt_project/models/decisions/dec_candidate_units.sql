{#- The pool's distributable accounts grouped into units (R6 hierarchy rule). Under
    family_to_one_rep a unit is a family's `ready` members; it moves as one: it takes ONE pick in
    the fair rounds and consumes one slot per member (unit_weight) of the picking rep. A family
    with a member still in a rep's book after steps 1-2 is held back (it would split the family),
    and so is a family with a customer/open opportunity when converted_family_rule is
    exclude_family. A unit is scored by its best member and sits in its lead member's segment
    (the head if ready, else the best member). blocked_rep_id: the rep who returned a member and
    whose rest period is not over; that rep never picks the unit. -#}
{%- set family_rule = policy_get('lifecycle.hierarchy_rule') -%}
{%- set converted_rule = policy_get('lifecycle.converted_family_rule') -%}
with

moved_to_pool as (
    select * from {{ ref('dec_moved_to_pool') }}
),

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

keyed as (
    select
        accounts.*,
        {%- if family_rule == 'family_to_one_rep' %}
        coalesce(accounts.family_id, accounts.account_id) as unit_id,
        {%- else %}
        accounts.account_id as unit_id,
        {%- endif %}
        case
            when accounts.owner_kind = 'rep'
                and accounts.account_id not in (select moved_to_pool.account_id from moved_to_pool)
                then 1
            else 0
        end as is_in_rep_book,
        case
            when coalesce(accounts.has_open_opportunity, false)
                or coalesce(accounts.is_customer, false) then 1
            else 0
        end as is_converted_member,
        case
            when accounts.return_requested_by_id is not null
                and accounts.rest_until_date > run_context.as_of_date
                then accounts.return_requested_by_id
        end as member_blocked_rep_id
    from accounts
    cross join run_context
),

unit_blocks as (
    select
        unit_id,
        max(is_in_rep_book) as has_member_in_book,
        max(is_converted_member) as has_converted_member
    from keyed
    group by unit_id
),

ready_members as (
    select
        keyed.*,
        row_number() over (
            partition by keyed.unit_id
            order by
                case when keyed.is_family_head then 0 else 1 end asc,
                keyed.priority_score desc,
                keyed.account_id asc
        ) as member_order
    from keyed
    inner join unit_blocks
        on keyed.unit_id = unit_blocks.unit_id
    where
        keyed.state = 'ready'
        and keyed.account_id not in (select moved_to_pool.account_id from moved_to_pool)
        {%- if family_rule == 'family_to_one_rep' %}
        and unit_blocks.has_member_in_book = 0
        {%- if converted_rule == 'exclude_family' %}
        and unit_blocks.has_converted_member = 0
        {%- endif %}
        {%- endif %}
),

units as (
    select
        unit_id,
        count(*) as unit_weight,
        max(priority_score) as unit_priority_score,
        max(timing_score) as unit_timing_score,
        max(case when is_in_market then 1 else 0 end) as unit_in_market,
        max(case when is_hot then 1 else 0 end) as unit_hot,
        min(member_blocked_rep_id) as blocked_rep_id
    from ready_members
    group by unit_id
),

lead_members as (
    select
        unit_id,
        segment_key
    from ready_members
    where member_order = 1
),

final as (
    select
        ready_members.account_id,
        ready_members.unit_id,
        lead_members.segment_key,
        ready_members.segment_key as account_segment_key,
        ready_members.member_order,
        units.unit_weight,
        units.unit_priority_score,
        units.unit_timing_score,
        units.unit_in_market = 1 as is_unit_in_market,
        units.unit_hot = 1 as is_unit_hot,
        units.blocked_rep_id,
        ready_members.owner_id,
        ready_members.state,
        ready_members.priority_score,
        ready_members.fit_score,
        ready_members.timing_score,
        ready_members.is_in_market,
        ready_members.is_hot,
        ready_members.strongest_signal
    from ready_members
    inner join units
        on ready_members.unit_id = units.unit_id
    inner join lead_members
        on ready_members.unit_id = lead_members.unit_id
    where lead_members.segment_key is not null
)

select * from final
