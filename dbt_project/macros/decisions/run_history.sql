{#- The body of a run-history model (run_candidates, run_rep_capacity): this run's rows of
    `source_model`, recorded by run and key. It follows the decision record's rule that the
    record describes the decisions that stand: a re-run of a run_id (after a kill, or run
    again) is that run's next `attempt`, and its rows replace the earlier attempt's rows of the
    same keys, so a killed attempt's explanation of a decision the re-run dropped or made
    differently does not survive it. A key the re-run no longer considers keeps the earlier
    attempt's row: its decision stood (its write reached the CRM, so the account left the
    pool). Other runs' rows are never touched, and a dry run records nothing. Used with
    materialized='incremental', incremental_strategy='delete+insert' and unique_key = run_id
    and the key columns. -#}
{% macro run_history_select(source_model) -%}
{%- set has_attempt = is_incremental()
    and 'attempt' in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
with

run_rows as (
    select * from {{ ref(source_model) }}
),

earlier_attempts as (
    {%- if has_attempt %}
    select
        recorded.run_id,
        max(coalesce(recorded.attempt, 1)) as last_attempt
    from {{ this }} as recorded
    where recorded.run_id in (select run_rows.run_id from run_rows)
    group by recorded.run_id
    {%- elif is_incremental() %}
    select
        recorded.run_id,
        1 as last_attempt
    from {{ this }} as recorded
    where recorded.run_id in (select run_rows.run_id from run_rows)
    group by recorded.run_id
    {%- else %}
    select
        run_id,
        0 as last_attempt
    from run_rows
    where 1 = 0
    {%- endif %}
),

final as (
    select
        run_rows.*,
        cast(coalesce(earlier_attempts.last_attempt, 0) + 1 as {{ dbt.type_int() }}) as attempt
    from run_rows
    left join earlier_attempts
        on run_rows.run_id = earlier_attempts.run_id
    where not {{ is_dry_run() }}
)

select * from final
{%- endmacro %}
