{#- Access to the validated policy (books.yml) passed by Python as var `policy`. -#}

{% macro policy() -%}
    {%- set value = var('policy', none) -%}
    {#- A JSON text is accepted too: sqlfluff's dbt templater can pass vars only as text
        (.sqlfluff [sqlfluff:templater:dbt:context], the lint-time policy). -#}
    {%- if value is string -%}
        {%- set value = fromjson(value) -%}
    {%- endif -%}
    {%- if value is none -%}
        {{ exceptions.raise_compiler_error(
            "dbt var 'policy' is missing: run dbt through dynamic-books (it passes the validated "
            ~ "books.yml as --vars) or pass --vars '{policy: ...}'") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{#- policy_get('lifecycle.working_window_days') -> value; a missing key fails naming the path. -#}
{% macro policy_get(path) -%}
    {%- set node = namespace(value=policy()) -%}
    {%- for key in path.split('.') -%}
        {%- if node.value is mapping and key in node.value -%}
            {%- set node.value = node.value[key] -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("policy var has no key '" ~ path ~ "' (books.yml)") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(node.value) }}
{%- endmacro %}

{#- A policy number as SQL; anything else is a compile error (never interpolated as text). -#}
{% macro policy_number(path) -%}
    {{ return(sql_number(policy_get(path), 'policy.' ~ path)) }}
{%- endmacro %}

{#- The run's as-of date as a SQL date literal (never the wall clock). -#}
{% macro as_of_date() -%}
    {%- set raw = var('as_of_date') | string -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', raw) -%}
        {{ exceptions.raise_compiler_error("var as_of_date must be YYYY-MM-DD, got '" ~ raw ~ "'") }}
    {%- endif -%}
    {{ return("cast('" ~ raw ~ "' as date)") }}
{%- endmacro %}
