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

{#- The integers 1..10000 as a derived table with one column `number` (no generate_series,
    no recursion: portable to every engine). Rounds and pool levels never need more. -#}
{% macro decisions_numbers() -%}
    (
        select
            1 + ones.digit + 10 * tens.digit + 100 * hundreds.digit
            + 1000 * thousands.digit as number
        from {{ decisions_digits('ones') }}
        cross join {{ decisions_digits('tens') }}
        cross join {{ decisions_digits('hundreds') }}
        cross join {{ decisions_digits('thousands') }}
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
    Emits CTE `<name>`: one row per (candidate, pick) match. -#}
{% macro decisions_fair_assign_ctes(name, candidates_cte, slots_cte, order_by) -%}
{{ name }}_picks as (
    select
        slot_rows.rep_id,
        slot_rows.segment_key,
        slot_rows.round_number,
        row_number() over (
            partition by slot_rows.segment_key, slot_rows.round_number
            order by slot_rows.snake_key
        ) as round_position,
        row_number() over (
            partition by slot_rows.segment_key
            order by slot_rows.round_number, slot_rows.snake_key
        ) as pick_number
    from (
        select
            slots.rep_id,
            slots.segment_key,
            numbers.number as round_number,
            case
                when {{ decisions_mod('numbers.number', 2) }} = 1 then slots.rotation_position
                else -1 * slots.rotation_position
            end as snake_key
        from {{ slots_cte }} as slots
        inner join {{ decisions_numbers() }} as numbers
            on numbers.number <= slots.pick_limit
    ) as slot_rows
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
        picks.round_position,
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
    Emits CTE `<name>`: account_id, pool_user_id. -#}
{% macro decisions_pool_fill_ctes(name, incoming_cte, loads_cte) -%}
{{ name }}_incoming as (
    select
        account_id,
        row_number() over (order by account_id) as incoming_rank,
        count(*) over () as incoming_count
    from {{ incoming_cte }}
),

{{ name }}_sorted as (
    select
        pool_user_id,
        pool_load,
        row_number() over (order by pool_load, pool_user_id) as load_rank,
        sum(pool_load) over (
            order by pool_load, pool_user_id rows between unbounded preceding and current row
        ) as prefix_load
    from {{ loads_cte }}
),

{{ name }}_level as (
    select
        max(sorted.load_rank) as level_users
    from {{ name }}_sorted as sorted
    where sorted.load_rank * sorted.pool_load - sorted.prefix_load
        <= (select count(*) from {{ incoming_cte }})
),

{{ name }}_params as (
    select
        sorted.load_rank as level_users,
        sorted.pool_load
        + floor(
            ((select count(*) from {{ incoming_cte }})
                - (sorted.load_rank * sorted.pool_load - sorted.prefix_load))
            / sorted.load_rank
        ) as base_level,
        (select count(*) from {{ incoming_cte }})
        - (sorted.load_rank * sorted.pool_load - sorted.prefix_load)
        - sorted.load_rank * floor(
            ((select count(*) from {{ incoming_cte }})
                - (sorted.load_rank * sorted.pool_load - sorted.prefix_load))
            / sorted.load_rank
        ) as remainder_users
    from {{ name }}_sorted as sorted
    inner join {{ name }}_level as level_
        on sorted.load_rank = level_.level_users
),

{{ name }}_takes as (
    select
        sorted.pool_user_id,
        sum(
            case
                when sorted.load_rank <= params.level_users
                    then params.base_level
                    + case when sorted.load_rank <= params.remainder_users then 1 else 0 end
                    - sorted.pool_load
                else 0
            end
        ) over (
            order by sorted.load_rank rows between unbounded preceding and current row
        ) as take_through,
        case
            when sorted.load_rank <= params.level_users
                then params.base_level
                + case when sorted.load_rank <= params.remainder_users then 1 else 0 end
                - sorted.pool_load
            else 0
        end as take_count
    from {{ name }}_sorted as sorted
    cross join {{ name }}_params as params
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
