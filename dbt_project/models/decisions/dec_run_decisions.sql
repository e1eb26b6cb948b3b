{#- This run's decisions, one row per (account, decision kind, lead), in step order: returns,
    retrievals, signal routes, top-off, swaps, lead routes, then releases (decided after returns,
    before retrievals) and the manual changes seen in the CRM (records). Rebuilt every run (a dry run too), so
    a plan and its report read what this run decided; book_decisions keeps the history. -#}
{%- set step_models = [
    'dec_returns', 'dec_retrievals', 'dec_signal_routes', 'dec_distributions', 'dec_swaps',
    'dec_lead_routes', 'dec_releases', 'dec_manual_changes'
] -%}
{%- set columns = [
    'run_id', 'as_of_date', 'account_id', 'decision_kind', 'from_owner_id', 'to_owner_id',
    'from_state', 'to_state', 'reason', 'rule', 'priority_score', 'fit_score', 'timing_score',
    'segment_key', 'slot_kind', 'slot_number', 'round_number', 'pick_number', 'rest_until_date',
    'linked_account_id', 'lead_id', 'changed_by_id', 'policy_version'
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
        {%- if column == 'pick_number'
            and step_model in ['dec_returns', 'dec_retrievals', 'dec_releases', 'dec_manual_changes'] %}
        cast(null as {{ dbt.type_int() }}) as pick_number,
        {%- elif column == 'lead_id' and step_model != 'dec_lead_routes' %}
        cast(null as {{ dbt.type_string() }}) as lead_id,
        {%- elif column == 'changed_by_id' and step_model != 'dec_manual_changes' %}
        cast(null as {{ dbt.type_string() }}) as changed_by_id,
        {%- else %}
        {{ step_model }}.{{ column }},
        {%- endif %}
        {%- endfor %}
        {{ loop.index }} as step_number
    from {{ step_model }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select * from unioned
