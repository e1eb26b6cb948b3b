{#- Helpers of the per-account incremental models (int_account_touches_aggregated): a model
    keeps one row per account, recomputes only the accounts whose inputs changed or whose date
    windows crossed a boundary, and rebuilds every row when the policy or the SQL changed. -#}

{#- An md5 of everything a row of this model was computed under besides its data: the policy
    and the code of the model, of every model upstream of it and of the macros they call. A row
    whose fingerprint differs from the current one is recomputed, so a policy change or a model
    change rebuilds the table without --full-refresh. Seeds' rows are not part of it. -#}
{% macro lineage_fingerprint() -%}
    {%- if not execute -%}
        {{ return('parse') }}
    {%- endif -%}
    {%- set seen = [] -%}
    {%- set parts = [tojson(policy(), sort_keys=True)] -%}
    {%- do _collect_lineage_code(model.unique_id, seen, parts) -%}
    {{ return(local_md5(parts | join('\n'))) }}
{%- endmacro %}

{% macro _collect_lineage_code(unique_id, seen, parts) -%}
    {%- if unique_id in seen or unique_id not in graph.nodes -%}
        {{ return(none) }}
    {%- endif -%}
    {%- do seen.append(unique_id) -%}
    {%- set node = graph.nodes[unique_id] -%}
    {%- do parts.append(unique_id ~ '\n' ~ (node.raw_code or '')) -%}
    {%- for macro_id in node.depends_on.macros | sort -%}
        {%- if macro_id not in seen and macro_id in graph.macros -%}
            {%- do seen.append(macro_id) -%}
            {%- do parts.append(macro_id ~ '\n' ~ graph.macros[macro_id].macro_sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for parent_id in node.depends_on.nodes | sort -%}
        {%- do _collect_lineage_code(parent_id, seen, parts) -%}
    {%- endfor -%}
{%- endmacro %}

{#- Whether `relation` exists with `column`: a table built before the bookkeeping columns
    existed is rebuilt in full once (its rows carry no boundary or fingerprint yet). -#}
{% macro relation_has_column(relation, column) -%}
    {%- if relation is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name')
        | map('lower') | list -%}
    {{ return(column | lower in names) }}
{%- endmacro %}

{#- Post-hook of an upserted per-account table: remove the keys the model `source_model` no
    longer holds (a deleted or quarantined account), which an upsert of the recomputed keys
    cannot do. Spark rebuilds the table each run (upsert_by_key): nothing to remove. The hook
    is rendered when it runs, so its ref names the built relation. -#}
{% macro prune_missing_keys(key, source_model) -%}
    {{ return(adapter.dispatch('prune_missing_keys', 'dynamic_books')(key, source_model)) }}
{%- endmacro %}

{% macro default__prune_missing_keys(key, source_model) -%}
    {{ return(["delete from {{ this }} where " ~ key ~ " not in (select kept." ~ key
        ~ " from {{ ref('" ~ source_model ~ "') }} as kept where kept." ~ key
        ~ " is not null)"]) }}
{%- endmacro %}

{% macro spark__prune_missing_keys(key, source_model) -%}
    {{ return([]) }}
{%- endmacro %}
