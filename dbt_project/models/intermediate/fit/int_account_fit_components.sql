{#- One row per (account, fit rule) the account satisfies: the parts of the fit score (R3).
    score_contribution = 100 * points / (sum of positive points of all rules), so the
    contributions of an account sum to its fit score. Implausible values (macro
    implausible_condition) score nothing. With fit.source = external the single component is
    the account's External_Fit_Score__c, clamped to 0-100. -#}
{%- set columns = fit_columns() -%}
{%- set rules = policy_get('fit.rules') -%}
{%- set ns = namespace(max_points=0) -%}
{%- for rule in rules -%}
    {%- set points = sql_number(rule['points'], 'fit.rules[' ~ loop.index0 ~ '].points') | float -%}
    {%- if points > 0 -%}{%- set ns.max_points = ns.max_points + points -%}{%- endif -%}
{%- endfor -%}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

cleaned as (
    select
        account_id
        {%- for column in columns %},
        case when {{ implausible_condition(column) }} then null else {{ column }} end
            as {{ column }}
        {%- endfor %}
    from accounts
),

components as (
    {%- if policy_get('fit.source') == 'external' %}
    select
        account_id,
        'external_fit_score' as rule_name,
        0 as rule_index,
        cast(null as {{ dbt.type_float() }}) as points,
        cast(100 as {{ dbt.type_float() }}) as max_points,
        cast(external_fit_score as {{ dbt.type_float() }}) as score_contribution
    from cleaned
    where external_fit_score is not null
    {%- elif rules | length == 0 or ns.max_points <= 0 %}
    select
        account_id,
        cast(null as {{ dbt.type_string() }}) as rule_name,
        0 as rule_index,
        cast(null as {{ dbt.type_float() }}) as points,
        cast(null as {{ dbt.type_float() }}) as max_points,
        cast(null as {{ dbt.type_float() }}) as score_contribution
    from cleaned
    where 1 = 0
    {%- else %}
    {%- for rule in rules %}
    select
        account_id,
        {{ sql_string_literal(rule['name']) }} as rule_name,
        {{ loop.index0 }} as rule_index,
        cast({{ sql_number(rule['points'], 'fit.rules[' ~ loop.index0 ~ '].points') }}
            as {{ dbt.type_float() }}) as points,
        cast({{ ns.max_points }} as {{ dbt.type_float() }}) as max_points,
        cast(100.0 * {{ sql_number(rule['points'], 'fit.rules[' ~ loop.index0 ~ '].points') }}
            / {{ ns.max_points }} as {{ dbt.type_float() }}) as score_contribution
    from cleaned
    where {{ policy_condition(rule, 'fit.rules[' ~ loop.index0 ~ ']') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    {%- endif %}
),

final as (
    select
        {{ dbt.concat(['account_id', "':'", 'rule_name']) }} as fit_component_id,
        account_id,
        rule_name,
        rule_index,
        points,
        max_points,
        case
            when score_contribution < 0 then 0
            when score_contribution > 100 then 100
            else score_contribution
        end as score_contribution
    from components
)

select * from final
