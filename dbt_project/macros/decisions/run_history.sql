{#- The body of an append-only history model: this run's rows of `source_model`, appended once
    per run. A re-run of a run_id appends nothing for keys it already recorded (history is never
    rewritten) and a dry run appends nothing. `keys`: the columns that, with run_id, identify a
    row. Used with materialized='incremental', incremental_strategy='append'. -#}
{% macro run_history_select(source_model, keys) -%}
with

run_rows as (
    select * from {{ ref(source_model) }}
),

final as (
    select run_rows.*
    from run_rows
    where not {{ is_dry_run() }}
    {%- if is_incremental() %}
        and not exists (
            select 1
            from {{ this }} as recorded
            where
                recorded.run_id = run_rows.run_id
                {%- for key in keys %}
                and recorded.{{ key }} = run_rows.{{ key }}
                {%- endfor %}
        )
    {%- endif %}
)

select * from final
{%- endmacro %}
