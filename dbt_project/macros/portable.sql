{#- Engine-specific SQL lives here, behind adapter.dispatch, so models stay portable. -#}

{#- Web domain of a URL or e-mail: lowercase, no scheme, no `www.`, no user, path, port or query.
    'https://WWW.Acme.com:443/about?x' -> 'acme.com'; 'bob@Acme.com' -> 'acme.com'; text that is
    not a domain ('N/A', 'acme dot com') -> null. -#}
{% macro normalize_domain(expr) -%}
    {{ return(adapter.dispatch('normalize_domain', 'dynamic_books')(expr)) }}
{%- endmacro %}

{% macro default__normalize_domain(expr) -%}
    {%- set stripped -%}
        regexp_replace(
            regexp_replace(
                regexp_replace(
                    regexp_replace(lower(trim({{ expr }})), '^[a-z][a-z0-9+.-]*://', ''),
                '^[^@/]*@', ''),
            '^www[0-9]*[.]', ''),
        '[/:?#].*$', '')
    {%- endset -%}
    {#- a domain has a dot and no blanks: 'N/A', 'none', 'acme dot com' are not domains -#}
    case
        when {{ stripped }} like '%_._%' and {{ stripped }} not like '% %'
            then {{ stripped }}
    end
{%- endmacro %}

{#- Company name for comparison: lowercase letters/digits/spaces, legal suffixes removed. -#}
{% macro normalize_company_name(expr) -%}
    {{ return(adapter.dispatch('normalize_company_name', 'dynamic_books')(expr)) }}
{%- endmacro %}

{% macro default__normalize_company_name(expr) -%}
    nullif(trim(
        regexp_replace(
            regexp_replace(
                regexp_replace(' ' || lower({{ expr }}) || ' ', '[^a-z0-9 ]', ' '),
            ' (inc|incorporated|llc|ltd|limited|corp|corporation|co|company|gmbh|ag|sa|plc|group|holdings)( |$)', ' '),
        ' +', ' ')
    ), '')
{%- endmacro %}

{% macro duckdb__normalize_company_name(expr) -%}
    nullif(trim(
        regexp_replace(
            regexp_replace(
                regexp_replace(' ' || lower({{ expr }}) || ' ', '[^a-z0-9 ]', ' ', 'g'),
            ' (inc|incorporated|llc|ltd|limited|corp|corporation|co|company|gmbh|ag|sa|plc|group|holdings)( |$)', ' ', 'g'),
        ' +', ' ', 'g')
    ), '')
{%- endmacro %}

{#- 0.5 ^ exponent, the decay factor. -#}
{% macro half_power(exponent) -%}
    {{ return(adapter.dispatch('half_power', 'dynamic_books')(exponent)) }}
{%- endmacro %}

{% macro default__half_power(exponent) -%}
    power(0.5, {{ exponent }})
{%- endmacro %}

{#- The domain one label up: 'eu.acme.com' -> 'acme.com' ('acme.com' -> 'com'). -#}
{% macro parent_domain(expr) -%}
    {{ return(adapter.dispatch('parent_domain', 'dynamic_books')(expr)) }}
{%- endmacro %}

{% macro default__parent_domain(expr) -%}
    regexp_replace({{ expr }}, '^[^.]+[.]', '')
{%- endmacro %}

{#- A blank-separated name without its last word: 'acme robotics eu' -> 'acme robotics'
    ('acme' -> 'acme'). -#}
{% macro drop_last_word(expr) -%}
    {{ return(adapter.dispatch('drop_last_word', 'dynamic_books')(expr)) }}
{%- endmacro %}

{% macro default__drop_last_word(expr) -%}
    regexp_replace({{ expr }}, ' [^ ]*$', '')
{%- endmacro %}

{#- The config of a table kept by upserting changed keys (the activity version tables).
    DuckDB: incremental delete+insert on the key. Spark without Delta/Iceberg (nothing may
    download at run time) has no row-level delete or merge on Parquet, and insert_overwrite only
    replaces whole partitions, so the table is rebuilt each run: same rows, more work. -#}
{% macro upsert_by_key(unique_key) -%}
    {{ return(adapter.dispatch('upsert_by_key', 'dynamic_books')(unique_key)) }}
{%- endmacro %}

{% macro default__upsert_by_key(unique_key) -%}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert',
               'unique_key': unique_key, 'on_schema_change': 'append_new_columns'}) }}
{%- endmacro %}

{% macro spark__upsert_by_key(unique_key) -%}
    {{ return({'materialized': 'table', 'file_format': 'parquet'}) }}
{%- endmacro %}
