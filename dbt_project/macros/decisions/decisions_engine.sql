{#- Building blocks of the decision engine (models/decisions). Each macro emits portable SQL;
    the ones named *_ctes emit a chain of named CTEs to paste inside a model's WITH list. -#}

{#- Index of the current run in the distribution cadence, used to rotate who picks first.
    Weekly cron (day-of-week set) -> weeks since a Monday; monthly (day-of-month set) -> months;
    otherwise days. Consecutive runs therefore get consecutive indexes. -#}
{% macro decisions_run_index(date_expr) -%}
    {%- set cron = policy_get('cadences.distribution.cron') | string -%}
    {%- set fields = cron.split() -%}
    {%- if fields | length != 5 -%}
        {{ exceptions.raise_compiler_error(
            "policy.cadences.distribution.cron must have 5 fields, got '" ~ cron ~ "'") }}
    {%- endif -%}
    {%- set epoch = "cast('1970-01-05' as date)" -%}
    {%- if fields[2] != '*' -%}
        {{ dbt.datediff(epoch, date_expr, 'month') }}
    {%- elif fields[4] != '*' -%}
        cast(floor({{ dbt.datediff(epoch, date_expr, 'day') }} / 7) as {{ dbt.type_int() }})
    {%- else -%}
        {{ dbt.datediff(epoch, date_expr, 'day') }}
    {%- endif -%}
{%- endmacro %}

{#- Non-negative remainder (portable: some engines lack `%`). -#}
{% macro decisions_mod(dividend, divisor) -%}
    mod(mod({{ dividend }}, {{ divisor }}) + {{ divisor }}, {{ divisor }})
{%- endmacro %}

{#- Each row of `relation` repeated `count_column` times, numbered 1..count in `number_column`
    (rows with a count below 1 or null vanish): the rounds a rep picks in. Engine-specific, so
    only the numbers needed are generated (DuckDB/Spark expand an array per row). -#}
{% macro decisions_expand_rows(relation, count_column, number_column) -%}
    {{ return(adapter.dispatch('decisions_expand_rows', 'dynamic_books')(
        relation, count_column, number_column)) }}
{%- endmacro %}

{% macro duckdb__decisions_expand_rows(relation, count_column, number_column) -%}
    (
        select
            expanded.*,
            unnest(generate_series(1, cast(expanded.{{ count_column }} as bigint)))
            as {{ number_column }}
        from {{ relation }} as expanded
        where expanded.{{ count_column }} >= 1
    )
{%- endmacro %}

{% macro spark__decisions_expand_rows(relation, count_column, number_column) -%}
    (
        select
            expanded.*,
            explode(sequence(1, cast(expanded.{{ count_column }} as int))) as {{ number_column }}
        from {{ relation }} as expanded
        where expanded.{{ count_column }} >= 1
    )
{%- endmacro %}

{#- Portable fallback: join to 1..10000 from digit cross joins (no generate_series or
    recursion needed); a rep never has more picks in one run. -#}
{% macro default__decisions_expand_rows(relation, count_column, number_column) -%}
    (
        select
            expanded.*,
            numbers.number as {{ number_column }}
        from {{ relation }} as expanded
        inner join (
            select 1 + ones.digit + 10 * tens.digit + 100 * hundreds.digit
                + 1000 * thousands.digit as number
            from {{ decisions_digits('ones') }}
            cross join {{ decisions_digits('tens') }}
            cross join {{ decisions_digits('hundreds') }}
            cross join {{ decisions_digits('thousands') }}
        ) as numbers
            on numbers.number <= expanded.{{ count_column }}
    )
{%- endmacro %}

{% macro decisions_digits(alias) -%}
    (
        {%- for digit in range(10) %}
        select {{ digit }} as digit{% if not loop.last %} union all{% endif %}
        {%- endfor %}
    ) as {{ alias }}
{%- endmacro %}

{#- Which slot kind an owned account occupies, so a return/retrieval frees the right kind.
    Must agree with int_reps_capacity.current_count. -#}
{% macro decisions_owned_slot_kind(alias) -%}
    case when {{ alias }}.is_in_market then 'intent' else 'fit' end
{%- endmacro %}

{#- Fair rank-join (R6): candidates ranked per segment by `order_by` are joined to rep picks
    ranked per segment by (round, snake position). Round r holds one pick per rep with at least
    r picks; odd rounds run in rotation order, even rounds in reverse (snake).
    slots_cte: rep_id, segment_key, rotation_position, pick_limit.
    candidates_cte: unit_id, segment_key, unit_weight, blocked_rep_id + the order_by columns.
    Emits CTE `<name>`: one row per (candidate, pick) match, built from its helpers
    `<name>_picks` and `<name>_ranked`; the caller names them all by choosing `name`. -#}
{% macro decisions_fair_assign_ctes(name, candidates_cte, slots_cte, order_by) -%}
{{ name }}_picks as (
    select
        slot_rows.rep_id,
        slot_rows.segment_key,
        slot_rows.round_number,
        row_number() over (
            partition by slot_rows.segment_key
            order by
                slot_rows.round_number,
                case
                    when {{ decisions_mod('slot_rows.round_number', 2) }} = 1
                        then slot_rows.rotation_position
                    else -1 * slot_rows.rotation_position
                end
        ) as pick_number
    from {{ decisions_expand_rows(slots_cte, 'pick_limit', 'round_number') }} as slot_rows
),

{{ name }}_ranked as (
    select
        candidates.*,
        row_number() over (
            partition by candidates.segment_key order by {{ order_by }}
        ) as candidate_rank
    from {{ candidates_cte }} as candidates
),

{{ name }} as (
    select
        picks.rep_id,
        picks.round_number,
        picks.pick_number,
        ranked.*
    from {{ name }}_picks as picks
    inner join {{ name }}_ranked as ranked
        on
            ranked.segment_key = picks.segment_key
            and ranked.candidate_rank = picks.pick_number
)
{%- endmacro %}

{#- Water-filling over pool users: incoming accounts go to the least-loaded pool users so the
    loads end as even as possible (closed form, no loops). Users sorted by (load, id); the first
    j* users are raised to a common level, the lowest-sorted ones take the remainder.
    incoming_cte: account_id. loads_cte: pool_user_id, pool_load.
    Emits CTE `<name>`: account_id, pool_user_id, built from its helpers `<name>_incoming`,
    `<name>_sorted`, `<name>_params` and `<name>_takes` (all named by the caller's `name`). -#}
{% macro decisions_pool_fill_ctes(name, incoming_cte, loads_cte) -%}
{{ name }}_incoming as (
    select
        account_id,
        row_number() over (order by account_id) as incoming_rank
    from {{ incoming_cte }}
),

{#- deficit: accounts needed to raise every user sorted up to this one to its load. -#}
{{ name }}_sorted as (
    select
        sorted.*,
        sorted.load_rank * sorted.pool_load - sorted.prefix_load as deficit,
        totals.incoming_count
    from (
        select
            pool_user_id,
            pool_load,
            row_number() over (order by pool_load, pool_user_id) as load_rank,
            sum(pool_load) over (
                order by pool_load, pool_user_id
                rows between unbounded preceding and current row
            ) as prefix_load
        from {{ loads_cte }}
    ) as sorted
    cross join (select count(*) as incoming_count from {{ incoming_cte }}) as totals
),

{#- the first level_users users end level with base_level (+1 for the first remainder_users) -#}
{{ name }}_params as (
    select
        load_rank as level_users,
        pool_load + floor((incoming_count - deficit) / load_rank) as base_level,
        incoming_count - deficit
        - load_rank * floor((incoming_count - deficit) / load_rank) as remainder_users
    from {{ name }}_sorted
    where load_rank = (
        select max(load_rank) from {{ name }}_sorted where deficit <= incoming_count
    )
),

{{ name }}_takes as (
    select
        takes.pool_user_id,
        takes.take_count,
        sum(takes.take_count) over (
            order by takes.load_rank rows between unbounded preceding and current row
        ) as take_through
    from (
        select
            sorted.pool_user_id,
            sorted.load_rank,
            case
                when sorted.load_rank <= params.level_users
                    then params.base_level - sorted.pool_load
                    + case when sorted.load_rank <= params.remainder_users then 1 else 0 end
                else 0
            end as take_count
        from {{ name }}_sorted as sorted
        cross join {{ name }}_params as params
    ) as takes
),

{{ name }} as (
    select
        incoming.account_id,
        takes.pool_user_id
    from {{ name }}_incoming as incoming
    left join {{ name }}_takes as takes
        on
            incoming.incoming_rank > takes.take_through - takes.take_count
            and incoming.incoming_rank <= takes.take_through
)
{%- endmacro %}

{#- Which of a rep's fair-round picks it keeps (R6 hierarchy rule): walking its picks in order,
    a unit is kept while it fits the rep's room, in its first slot kind if it fits there, else in
    its second; a unit (a family) that no longer fits is skipped and stays in the pool, and the
    rep goes on with its next pick (a smaller unit may still fit). The walk is a fold per rep,
    so it is written as a recursive query nested in a CTE (one step per pick of a rep; ANSI SQL,
    and nested so dbt can still prepend CTEs to the model).
    assigned_cte: rep_id, unit_id, unit_weight, pick_number (picks the rep may take).
    limits_cte: rep_id, total_room, first_room, second_room.
    Emits CTE `<name>`: rep_id, unit_id, pick_number, slot_order (1 first kind, 2 second),
    built from its helpers `<name>_sequence` and `<name>_steps` (named by the caller). -#}
{#- Each rep's picks in pick order, numbered per rep: what both fit walks step through. -#}
{% macro decisions_fit_walk_sequence(name, assigned_cte) -%}
{{ name }}_sequence as (
    select
        walk_picks.rep_id,
        walk_picks.unit_id,
        cast(walk_picks.unit_weight as {{ dbt.type_bigint() }}) as unit_weight,
        walk_picks.pick_number,
        row_number() over (
            partition by walk_picks.rep_id order by walk_picks.pick_number
        ) as rep_pick_index
    from {{ assigned_cte }} as walk_picks
),
{%- endmacro %}

{% macro decisions_fit_walk_ctes(name, assigned_cte, limits_cte) -%}
    {{ return(adapter.dispatch('decisions_fit_walk_ctes', 'dynamic_books')(
        name, assigned_cte, limits_cte)) }}
{%- endmacro %}

{% macro default__decisions_fit_walk_ctes(name, assigned_cte, limits_cte) -%}
{%- set int_type = dbt.type_bigint() -%}
{{ decisions_fit_walk_sequence(name, assigned_cte) }}

{{ name }}_steps as (
    with recursive walk (
        rep_id, rep_pick_index, unit_id, pick_number, slot_order, total_room, first_room,
        second_room
    ) as (
        select
            step.rep_id,
            step.rep_pick_index,
            step.unit_id,
            step.pick_number,
            step.slot_order,
            step.total_room - case when step.slot_order is null then 0 else step.unit_weight end,
            step.first_room - case when step.slot_order = 1 then step.unit_weight else 0 end,
            step.second_room - case when step.slot_order = 2 then step.unit_weight else 0 end
        from (
            select
                walk_sequence.*,
                cast(limits.total_room as {{ int_type }}) as total_room,
                cast(limits.first_room as {{ int_type }}) as first_room,
                cast(limits.second_room as {{ int_type }}) as second_room,
                {{ decisions_fit_slot_order('walk_sequence.unit_weight', 'limits') }} as slot_order
            from {{ name }}_sequence as walk_sequence
            inner join {{ limits_cte }} as limits
                on walk_sequence.rep_id = limits.rep_id
            where walk_sequence.rep_pick_index = 1
        ) as step
        union all
        select
            step.rep_id,
            step.rep_pick_index,
            step.unit_id,
            step.pick_number,
            step.slot_order,
            step.total_room - case when step.slot_order is null then 0 else step.unit_weight end,
            step.first_room - case when step.slot_order = 1 then step.unit_weight else 0 end,
            step.second_room - case when step.slot_order = 2 then step.unit_weight else 0 end
        from (
            select
                walk_sequence.*,
                walk.total_room,
                walk.first_room,
                walk.second_room,
                {{ decisions_fit_slot_order('walk_sequence.unit_weight', 'walk') }} as slot_order
            from walk
            inner join {{ name }}_sequence as walk_sequence
                on
                    walk.rep_id = walk_sequence.rep_id
                    and walk_sequence.rep_pick_index = walk.rep_pick_index + 1
            where walk.total_room > 0
        ) as step
    )

    select * from walk
),

{{ name }} as (
    select rep_id, unit_id, pick_number, slot_order
    from {{ name }}_steps
    where slot_order is not null
)
{%- endmacro %}

{#- Spark: the same walk as a fold over each rep's picks in one pass (`aggregate` over the
    picks sorted by rep_pick_index), not a recursive query: Spark runs a recursive CTE one job per
    step and re-plans the whole chain of CTEs feeding it at every step (minutes for a few hundred
    accounts). The accumulator carries the three rooms and one slot order per pick walked; as in
    the recursive walk, the first pick is always walked and each later one only while the room
    left after the previous pick is positive. Same output CTEs and columns. -#}
{% macro spark__decisions_fit_walk_ctes(name, assigned_cte, limits_cte) -%}
{%- set int_type = dbt.type_bigint() -%}
{%- set slot = decisions_fit_slot_order('pick.unit_weight', 'acc') -%}
{{ decisions_fit_walk_sequence(name, assigned_cte) }}

{{ name }}_steps as (
    select
        folded.rep_id,
        slots.slot_index + 1 as rep_pick_index,
        slots.slot_order
    from (
        select
            picks.rep_id,
            aggregate(
                picks.walk_order,
                named_struct(
                    'total_room', cast(limits.total_room as {{ int_type }}),
                    'first_room', cast(limits.first_room as {{ int_type }}),
                    'second_room', cast(limits.second_room as {{ int_type }}),
                    'slots', cast(array() as array<int>)
                ),
                (acc, pick) -> case
                    when size(acc.slots) = 0 or acc.total_room > 0 then named_struct(
                        'total_room', acc.total_room
                        - case when ({{ slot }}) is null then 0 else pick.unit_weight end,
                        'first_room', acc.first_room
                        - case when ({{ slot }}) = 1 then pick.unit_weight else 0 end,
                        'second_room', acc.second_room
                        - case when ({{ slot }}) = 2 then pick.unit_weight else 0 end,
                        'slots', concat(acc.slots, array(cast(({{ slot }}) as int)))
                    )
                    else acc
                end
            ).slots as slot_orders
        from (
            select
                rep_id,
                array_sort(collect_list(struct(rep_pick_index, unit_weight))) as walk_order
            from {{ name }}_sequence
            group by rep_id
        ) as picks
        inner join {{ limits_cte }} as limits
            on picks.rep_id = limits.rep_id
    ) as folded
    lateral view posexplode(folded.slot_orders) slots as slot_index, slot_order
),

{{ name }} as (
    select
        walk_sequence.rep_id,
        walk_sequence.unit_id,
        walk_sequence.pick_number,
        steps.slot_order
    from {{ name }}_steps as steps
    inner join {{ name }}_sequence as walk_sequence
        on
            steps.rep_id = walk_sequence.rep_id
            and steps.rep_pick_index = walk_sequence.rep_pick_index
    where steps.slot_order is not null
)
{%- endmacro %}

{% macro decisions_fit_slot_order(weight, rooms) -%}
    case
        when {{ weight }} <= {{ rooms }}.total_room and {{ weight }} <= {{ rooms }}.first_room
            then 1
        when {{ weight }} <= {{ rooms }}.total_room and {{ weight }} <= {{ rooms }}.second_room
            then 2
    end
{%- endmacro %}
