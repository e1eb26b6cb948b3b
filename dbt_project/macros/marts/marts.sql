{#- Helpers of the public marts (models/marts). -#}

{#- The run's id (ops.run_context, macros/policy.sql) as a SQL string literal: every public table
    carries it so a reader can check that all the tables they join come from one run. -#}
{% macro mart_run_id() -%}
    {{ return(run_id()) }}
{%- endmacro %}

{#- Gini coefficient of `value` inside a group, as an aggregate expression over rows that
    carry `rank` = row_number() ordered by value ascending (ties in any stable order: tied
    values give the same sum). Sorted-rank formula, portable to every engine:
        G = 2 * sum(rank * value) / (n * sum(value)) - (n + 1) / n
    0 = perfectly equal; (n - 1) / n = one member holds everything. A group whose values are
    all 0 is equal (0); an empty group is null. -#}
{% macro gini_coefficient(value, rank) -%}
    case
        when count(*) = 0 then null
        when sum({{ value }}) = 0 then 0.0
        else
            2.0 * sum({{ rank }} * ({{ value }})) / (count(*) * 1.0 * sum({{ value }}))
            - (count(*) + 1.0) / count(*)
    end
{%- endmacro %}

{#- a / b as a non-integer ratio, null when b is 0 or null (shares and ratios of the marts).
    `* 1.0` instead of a cast keeps double precision (type_float is 32-bit on some engines). -#}
{% macro safe_ratio(numerator, denominator) -%}
    case
        when {{ denominator }} is null or {{ denominator }} = 0 then null
        else ({{ numerator }}) * 1.0 / ({{ denominator }})
    end
{%- endmacro %}

{#- Activity type in the CRM picklist's spelling (Call, Email, Meeting, LinkedIn, Other):
    engagement exports arrive lowercased, and KPIs must not split one type in two. -#}
{% macro canonical_activity_type(expr) -%}
    case lower({{ expr }})
        when 'call' then 'Call'
        when 'email' then 'Email'
        when 'meeting' then 'Meeting'
        when 'linkedin' then 'LinkedIn'
        else 'Other'
    end
{%- endmacro %}
