{#- Plausibility bounds for firmographic columns used by fit: a value outside is treated as
    missing for scoring and raises a data-quality flag. -#}
{% macro implausible_condition(column) -%}
    {%- set bounds = {
        'employee_count': ('< 1', '> 5000000'),
        'annual_revenue': ('< 0', '> 1000000000000'),
        'external_fit_score': ('< 0', '> 100'),
    } -%}
    {%- if column in bounds -%}
        {{ return('(' ~ column ~ ' ' ~ bounds[column][0] ~ ' or ' ~ column ~ ' ' ~ bounds[column][1] ~ ')') }}
    {%- else -%}
        {{ return('(1 = 0)') }}
    {%- endif -%}
{%- endmacro %}

{#- The staging columns fit reads: from the rules, or the external score. -#}
{% macro fit_columns() -%}
    {%- set columns = [] -%}
    {%- if policy_get('fit.source') == 'external' -%}
        {%- do columns.append('external_fit_score') -%}
    {%- else -%}
        {%- for rule in policy_get('fit.rules') -%}
            {%- set column = account_field_column(rule['field'], 'fit.rules[' ~ loop.index0 ~ ']') -%}
            {%- if column not in columns -%}
                {%- do columns.append(column) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}

{#- SQL pieces naming each failed check, e.g. 'missing_employee_count;'. -#}
{% macro flag_exprs_for(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("case when checks.is_missing_" ~ column ~ " = 1 then 'missing_" ~ column ~ ";' else '' end") -%}
        {%- do parts.append("case when checks.is_implausible_" ~ column ~ " = 1 then 'implausible_" ~ column ~ ";' else '' end") -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}


{#- SQL aggregates, one per fit rule slot (rule_index 0 .. n-1), each '; rule=points' for the
    component in that slot or '' (int_accounts_fit_scored concatenates them in policy order). -#}
{% macro fit_explanation_slots(n) -%}
    {%- set part = dbt.concat(["'; '", 'rule_name', "'='",
                               dbt.cast('round(score_contribution, 1)', dbt.type_string())]) -%}
    {%- set slots = [] -%}
    {%- for index in range(n) -%}
        {%- do slots.append("coalesce(max(case when rule_index = " ~ index ~ " then " ~ part ~ " end), '')") -%}
    {%- endfor -%}
    {{ return(slots) }}
{%- endmacro %}
