{#- Fit score (0-100), tier and confidence per account (R3). The score is the sum of the
    account's components; confidence is the share of fit inputs present and plausible; every
    missing or implausible input is named in fit_data_quality_flags (never an error).
    fit_explanation lists the components in policy order, one slot per rule (rule_index), so
    no ordered string aggregation is needed: at 1M accounts an ordered listagg cost ~7 s of
    sorting, the slots are a plain grouped max. -#}
{%- set columns = fit_columns() -%}
{%- set tiers = policy_get('fit.tiers') -%}
{%- set rule_slots = 1 if policy_get('fit.source') == 'external' else policy_get('fit.rules') | length -%}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

components as (
    select * from {{ ref('int_account_fit_components') }}
),

component_totals as (
    select
        account_id,
        {{ exact_sum('score_contribution') }} as fit_score,
        count(*) as component_count,
        {{ dbt.concat(["''"] + fit_explanation_slots(rule_slots)) }} as explanation_text
    from components
    group by account_id
),

checks as (
    select
        account_id,
        {%- for column in columns %}
        case when {{ column }} is null then 1 else 0 end as is_missing_{{ column }},
        case when {{ implausible_condition(column) }} then 1 else 0 end
            as is_implausible_{{ column }},
        {%- endfor %}
        0 as no_check
    from accounts
),

scored as (
    select
        checks.account_id,
        coalesce(component_totals.fit_score, 0) as fit_score,
        coalesce(component_totals.component_count, 0) as component_count,
        component_totals.explanation_text,
        (0
            {%- for column in columns %}
            + checks.is_missing_{{ column }} + checks.is_implausible_{{ column }}
            {%- endfor %}
        ) as issue_count,
        {{ dbt.concat(["''"] + flag_exprs_for(columns)) }} as flag_text
    from checks
    left join component_totals
        on checks.account_id = component_totals.account_id
),

final as (
    select
        account_id,
        case when fit_score > 100 then 100 else fit_score end as fit_score,
        case
            {%- for tier, minimum in tiers | dictsort(by='value', reverse=true) %}
            when fit_score >= {{ sql_number(minimum, 'fit.tiers.' ~ tier) }}
                then {{ sql_string_literal(tier) }}
            {%- endfor %}
            else 'D'
        end as fit_tier,
        component_count as fit_component_count,
        case when explanation_text <> '' then substr(explanation_text, 3) end as fit_explanation,
        {%- if columns %}
        round(cast(1.0 - 1.0 * issue_count / {{ columns | length }} as {{ dbt.type_numeric() }}), 2)
        {%- else %}
        round(cast(1.0 as {{ dbt.type_numeric() }}), 2)
        {%- endif %} as fit_confidence,
        nullif(flag_text, '') as fit_data_quality_flags,
        issue_count > 0 as has_fit_data_quality_issue
    from scored
)

select * from final
