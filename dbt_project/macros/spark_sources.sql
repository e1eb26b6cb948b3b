{#- Spark reads the sources from Parquet copies the Python side writes before each build
    (warehouse/spark_raw.py `export_for_spark`: one folder per table under
    $BOOKS_SPARK_WAREHOUSE/raw/<schema>/<table>). This on-run-start hook (re)registers every
    source the build reads as an external table over its folder, so each build reads the copy
    just written, with its current columns, and a source that was not copied stops the build
    here, before any model. On other engines the sources are the ingested tables themselves:
    nothing to do. -#}
{% macro register_sources() -%}
    {{ return(adapter.dispatch('register_sources', 'dynamic_books')()) }}
{%- endmacro %}

{% macro default__register_sources() -%}
{%- endmacro %}

{% macro spark__register_sources() -%}
    {%- if execute -%}
        {%- set root = env_var('BOOKS_SPARK_WAREHOUSE') ~ '/raw' -%}
        {#- not the write-back's own tables (sources only to document them, `meta.dagster`
            names the asset that writes them): a fresh warehouse has none yet -#}
        {%- set sources = [] -%}
        {%- for source in graph.sources.values() | sort(attribute='unique_id') -%}
            {%- if not (source.meta or {}).get('dagster') -%}
                {%- do sources.append(source) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for schema in sources | map(attribute='schema') | unique -%}
            {%- do run_query('create database if not exists ' ~ schema) -%}
        {%- endfor -%}
        {%- for source in sources -%}
            {%- set relation = source.schema ~ '.' ~ source.identifier -%}
            {%- do run_query('drop table if exists ' ~ relation) -%}
            {%- do run_query(
                'create table ' ~ relation ~ " using parquet location '"
                ~ root ~ '/' ~ source.schema ~ '/' ~ source.identifier ~ "'"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
