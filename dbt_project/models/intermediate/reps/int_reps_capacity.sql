{#- Decision-engine input (CONTRACTS.md): one row per (book rep, slot kind in fit/intent).
    capacity = policy.books[role].slots[kind], times ramp.capacity_share while the rep is within
    ramp.days of Ramp_Start_Date__c (floored); 0 when the rep is not eligible (inactive, out of
    office on the as-of date when out_of_office_gets_nothing, ramp not started, no segment).
    current_count: owned accounts in working or stale state, split between the slot kinds by the
    one capacity model (macros/decisions/capacity.sql) over the capacities after ramp and
    eligibility. open_slots = max(capacity - current_count, 0); a rep's open slots of both kinds
    add up to max(target - book, 0). -#}
{%- set book_roles = policy_book_roles() -%}
{%- set books = policy_get('books') -%}
{%- set ramp = books.get('ramp', {}) -%}
{%- set ooo_gets_nothing = books.get('out_of_office_gets_nothing', true) -%}
with

users as (
    select * from {{ ref('int_users_classified') }}
),

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

role_slots as (
    {%- for role in book_roles %}
    {%- set outer_last = loop.last %}
    {%- for kind in ['fit', 'intent'] %}
    select
        {{ sql_string_literal(role) }} as role,
        '{{ kind }}' as slot_kind,
        {{ sql_number(books[role]['slots'].get(kind, 0), 'books.' ~ role ~ '.slots.' ~ kind) }}
            as nominal_capacity,
        {{ sql_number(books[role]['max_new_per_run'], 'books.' ~ role ~ '.max_new_per_run') }}
            as max_new_per_run
    {% if not (loop.last and outer_last) %}union all{% endif %}
    {%- endfor %}
    {%- endfor %}
    {%- if not book_roles %}
    select
        cast(null as {{ dbt.type_string() }}) as role,
        cast(null as {{ dbt.type_string() }}) as slot_kind,
        0 as nominal_capacity,
        0 as max_new_per_run
    where 1 = 0
    {%- endif %}
),

reps as (
    select
        user_id as rep_id,
        user_name as rep_name,
        book_role as role,
        segment_key,
        is_active,
        ramp_start_date,
        out_of_office_until_date,
        case
            when not is_active then 'inactive'
            {%- if ooo_gets_nothing %}
            when out_of_office_until_date >= {{ as_of_date() }} then 'out_of_office'
            {%- endif %}
            when ramp_start_date > {{ as_of_date() }} then 'ramp_not_started'
            when segment_key is null then 'no_segment'
        end as ineligible_reason,
        {%- if ramp.get('days') is not none %}
        coalesce(
            {{ dbt.datediff('ramp_start_date', as_of_date(), 'day') }}
                < {{ sql_number(ramp['days'], 'books.ramp.days') }},
            false
        ) as is_ramping
        {%- else %}
        false as is_ramping
        {%- endif %}
    from users
    where owner_kind in ('rep', 'inactive')
),

owned as (
    select
        owner_id as rep_id,
        count(*) as owned_count,
        sum(case when is_in_market then 1 else 0 end) as owned_in_market_count
    from accounts
    where state in ('working', 'stale')
    group by owner_id
),

slots as (
    select
        reps.rep_id,
        reps.rep_name,
        reps.role,
        reps.segment_key,
        role_slots.slot_kind,
        reps.ineligible_reason is null as is_eligible,
        reps.ineligible_reason,
        case
            when reps.ineligible_reason is not null then 0
            {%- if ramp.get('capacity_share') is not none %}
            when reps.is_ramping then cast(floor(role_slots.nominal_capacity
                * {{ sql_number(ramp['capacity_share'], 'books.ramp.capacity_share') }})
                as {{ dbt.type_int() }})
            {%- endif %}
            else role_slots.nominal_capacity
        end as capacity,
        role_slots.nominal_capacity,
        role_slots.max_new_per_run,
        coalesce(owned.owned_count, 0) as owned_count,
        coalesce(owned.owned_in_market_count, 0) as owned_in_market_count
    from reps
    inner join role_slots
        on reps.role = role_slots.role
    left join owned
        on reps.rep_id = owned.rep_id
),

capacities as (
    select
        *,
        max(case when slot_kind = 'fit' then capacity else 0 end)
            over (partition by rep_id) as fit_capacity,
        max(case when slot_kind = 'intent' then capacity else 0 end)
            over (partition by rep_id) as intent_capacity
    from slots
),

counted as (
    select
        *,
        {{ capacity_slot_count(
            'slot_kind', 'owned_count', 'owned_in_market_count', 'fit_capacity',
            'intent_capacity') }} as current_count
    from capacities
),

final as (
    select
        {{ dbt.concat(['rep_id', "':'", 'slot_kind']) }} as rep_slot_id,
        rep_id,
        rep_name,
        role,
        segment_key,
        slot_kind,
        is_eligible,
        ineligible_reason,
        capacity,
        current_count,
        greatest(capacity - current_count, 0) as open_slots,
        case when is_eligible then max_new_per_run else 0 end as max_new_per_run
    from counted
)

select * from final
