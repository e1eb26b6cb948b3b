{#- The audit trail of every decision (R15): one row per (run, account, decision kind, lead;
    lead_id is set only on lead_route rows, one per routed lead), appended once per run.
    Re-running a run_id appends nothing (a run appends all its rows at once, so rows already
    recorded for (run, account, kind) are kept as first decided): history is never rewritten.
    New columns are added to an existing table (on_schema_change). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns'
) }}
{%- set step_models = [
    'dec_returns', 'dec_retrievals', 'dec_signal_routes', 'dec_distributions', 'dec_swaps',
    'dec_lead_routes'
] -%}
{%- set columns = [
    'run_id', 'as_of_date', 'account_id', 'decision_kind', 'from_owner_id', 'to_owner_id',
    'from_state', 'to_state', 'reason', 'rule', 'priority_score', 'fit_score', 'timing_score',
    'segment_key', 'slot_kind', 'slot_number', 'round_number', 'pick_number', 'rest_until_date',
    'linked_account_id', 'lead_id', 'policy_version'
] -%}
with

{% for step_model in step_models %}
{{ step_model }} as (
    select * from {{ ref(step_model) }}
),
{% endfor %}

unioned as (
    {%- for step_model in step_models %}
    select
        {%- for column in columns %}
        {%- if column == 'pick_number' and step_model in ['dec_returns', 'dec_retrievals'] %}
        cast(null as {{ dbt.type_int() }}) as pick_number,
        {%- elif column == 'lead_id' and step_model != 'dec_lead_routes' %}
        cast(null as {{ dbt.type_string() }}) as lead_id,
        {%- else %}
        {{ step_model }}.{{ column }},
        {%- endif %}
        {%- endfor %}
        {{ loop.index }} as step_number
    from {{ step_model }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select unioned.*
    from unioned
    {%- if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as recorded
        where
            recorded.run_id = unioned.run_id
            and recorded.account_id = unioned.account_id
            and recorded.decision_kind = unioned.decision_kind
    )
    {%- endif %}
)

select * from final
