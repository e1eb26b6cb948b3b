{#- Ultimate parent of every row of a parent-pointer table, with bounded self-joins instead of a
    recursive CTE (Spark and some engines have none; dirty data may hold cycles).

    Walks up to `max_depth` parents. Output per row: the id, `ultimate_parent_id`, `depth`
    (levels above the row), `is_in_cycle` (the row is its own ancestor), `is_truncated` (the
    chain did not end within max_depth: a longer chain or a cycle above the row) and
    `has_missing_parent` (a parent id that is not in the table: treated as a root).
    For cycles and truncated chains the family is the smallest id on the walked chain, so the
    members of one cycle share a family without looping. -#}
{% macro resolve_hierarchy(relation, id_column, parent_column, max_depth=8) -%}
    select
        level_0.{{ id_column }},
        level_0.{{ parent_column }},
        {%- for level in range(1, max_depth + 1) %}
        level_{{ level }}.{{ id_column }} as ancestor_{{ level }}_id,
        {%- endfor %}
        (
            {%- for level in range(1, max_depth + 1) %}
            coalesce(level_{{ level }}.{{ id_column }} = level_0.{{ id_column }}, false){% if not loop.last %} or{% endif %}
            {%- endfor %}
        ) as is_in_cycle_raw,
        level_{{ max_depth }}.{{ parent_column }} is not null as is_truncated_raw,
        (
            {%- for level in range(0, max_depth + 1) %}
            (level_{{ level }}.{{ parent_column }} is not null
                {%- if level < max_depth %} and level_{{ level + 1 }}.{{ id_column }} is null{% endif %}
                {%- if level == max_depth %} and 1 = 0{% endif %}){% if not loop.last %} or{% endif %}
            {%- endfor %}
        ) as has_missing_parent_raw,
        case
            {%- for level in range(max_depth, 0, -1) %}
            when level_{{ level }}.{{ id_column }} is not null then {{ level }}
            {%- endfor %}
            else 0
        end as depth,
        coalesce(
            {%- for level in range(max_depth, -1, -1) %}
            level_{{ level }}.{{ id_column }}{% if not loop.last %},{% endif %}
            {%- endfor %}
        ) as deepest_ancestor_id,
        least(
            level_0.{{ id_column }}
            {%- for level in range(1, max_depth + 1) %},
            coalesce(level_{{ level }}.{{ id_column }}, level_0.{{ id_column }})
            {%- endfor %}
        ) as smallest_chain_id
    from {{ relation }} as level_0
    {%- for level in range(1, max_depth + 1) %}
    left join {{ relation }} as level_{{ level }}
        on level_{{ level - 1 }}.{{ parent_column }} = level_{{ level }}.{{ id_column }}
    {%- endfor %}
{%- endmacro %}
