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

{#- CTE `<name>` (<id_column>, name_prefix): every proper word-prefix of `<key_column>` (keys
    hold words separated by single blanks) of the rows of `<source_cte>`: 'acme robotics eu' ->
    'acme robotics', 'acme'. The model's WITH must be `with recursive` (default: a recursive
    CTE dropping one word per step). -#}
{% macro word_prefix_cte(name, source_cte, id_column, key_column) -%}
    {{ return(adapter.dispatch('word_prefix_cte', 'dynamic_books')(
        name, source_cte, id_column, key_column)) }}
{%- endmacro %}

{% macro default__word_prefix_cte(name, source_cte, id_column, key_column) -%}
{{ name }} as (
    select
        {{ id_column }},
        {{ drop_last_word(key_column) }} as name_prefix
    from {{ source_cte }}
    where {{ key_column }} like '% %'
    union all
    select
        {{ id_column }},
        {{ drop_last_word('name_prefix') }} as name_prefix
    from {{ name }}
    where name_prefix like '% %'
)
{%- endmacro %}

{#- Spark: all prefixes at once from the split words. Spark runs a recursive CTE one job per
    step and plans the whole chain of CTEs feeding it again at each step (minutes per model). -#}
{% macro spark__word_prefix_cte(name, source_cte, id_column, key_column) -%}
{{ name }} as (
    select
        words.{{ id_column }},
        prefixes.name_prefix
    from (
        select
            {{ id_column }},
            split({{ key_column }}, ' ') as key_words
        from {{ source_cte }}
        where {{ key_column }} like '% %'
    ) as words
    lateral view explode(
        transform(sequence(1, size(words.key_words) - 1), k -> array_join(slice(words.key_words, 1, k), ' '))
    ) prefixes as name_prefix
)
{%- endmacro %}
