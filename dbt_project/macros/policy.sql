{#- Access to the validated policy (books.yml), which Python passes as JSON in the environment
    variable BOOKS_DBT_POLICY (policy.policy_dbt_env), never as a command-line var: the command
    line is printed and listed, and changed vars cost dbt a full reparse, where a changed
    environment variable reparses only the models that read it. -#}

{% macro policy() -%}
    {#- A unit test's `overrides: vars: policy:` wins: it tests a rule under its own policy. -#}
    {%- set given = var('policy', none) -%}
    {%- if given is not none -%}
        {{ return(given) }}
    {%- endif -%}
    {%- set raw = env_var('BOOKS_DBT_POLICY', '') -%}
    {%- if raw == '' -%}
        {{ exceptions.raise_compiler_error(
            "the policy is missing: dbt reads the validated books.yml from the environment "
            ~ "variable BOOKS_DBT_POLICY, which dynamic-books sets on every dbt run; by hand: "
            ~ "BOOKS_DBT_POLICY=\"$(python -m policy books.yml)\" dbt ...") }}
    {%- endif -%}
    {{ return(fromjson(raw)) }}
{%- endmacro %}

{#- policy_get('lifecycle.working_window_days') -> value; a missing key fails naming the path. -#}
{% macro policy_get(path) -%}
    {%- set node = namespace(value=policy()) -%}
    {%- for key in path.split('.') -%}
        {%- if node.value is mapping and key in node.value -%}
            {%- set node.value = node.value[key] -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("the policy has no key '" ~ path ~ "' (books.yml)") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(node.value) }}
{%- endmacro %}

{#- A policy number as SQL; anything else is a compile error (never interpolated as text). -#}
{% macro policy_number(path) -%}
    {{ return(sql_number(policy_get(path), 'policy.' ~ path)) }}
{%- endmacro %}

{#- The run's parameters (CONTRACTS.md "dbt vars and the run context"). Python writes them to
    ops.run_context before every cycle's dbt build; they are not vars, so a new as-of date or
    run id does not cost a full reparse. A var of the same name (`--vars '{as_of_date: ...}'`)
    still wins: dbt unit tests and ad-hoc runs pass them. The value is read at execution time
    and compiled in as a literal (readable, deterministic SQL); while parsing, a sentinel. -#}
{% macro run_context_value(name) -%}
    {%- set given = var(name, none) -%}
    {%- if given is not none -%}
        {{ return(given | string) }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return({'as_of_date': '1970-01-01', 'run_id': 'parse', 'policy_version': 'parse',
                   'cycle_mode': 'full', 'dry_run': 'false'}[name]) }}
    {%- endif -%}
    {#- source() only at execution: parse records no dependency, so models keep their lineage
        and unit tests their inputs. -#}
    {%- set relation = source('ops', 'run_context') -%}
    {%- set rows = run_query(
        'select cast(' ~ name ~ ' as ' ~ dbt.type_string() ~ ') as value from ' ~ relation) -%}
    {%- if rows.rows | length != 1 -%}
        {{ exceptions.raise_compiler_error(
            relation ~ " holds " ~ (rows.rows | length) ~ " rows, expected the run's one row: run dbt "
            ~ "through dynamic-books (warehouse.run_context.write_run_context) or pass --vars "
            ~ "'{" ~ name ~ ": ...}'") }}
    {%- endif -%}
    {{ return(rows.columns[0].values()[0]) }}
{%- endmacro %}

{#- The run's as-of date as a SQL date literal (never the wall clock). -#}
{% macro as_of_date() -%}
    {%- set raw = run_context_value('as_of_date') -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', raw) -%}
        {{ exceptions.raise_compiler_error("as_of_date must be YYYY-MM-DD, got '" ~ raw ~ "'") }}
    {%- endif -%}
    {{ return("cast('" ~ raw ~ "' as date)") }}
{%- endmacro %}

{#- The books run id, the policy version hash and the cycle mode as SQL string literals. -#}
{% macro run_id() -%}
    {{ return(sql_string_literal(run_context_value('run_id'))) }}
{%- endmacro %}

{% macro policy_version() -%}
    {{ return(sql_string_literal(run_context_value('policy_version'))) }}
{%- endmacro %}

{% macro cycle_mode() -%}
    {{ return(sql_string_literal(run_context_value('cycle_mode'))) }}
{%- endmacro %}

{#- Whether this run is a dry run, as a SQL boolean literal: a dry run decides and plans but
    appends nothing to the decision history (book_decisions). -#}
{% macro is_dry_run() -%}
    {%- set raw = run_context_value('dry_run') | lower -%}
    {%- if raw not in ('true', 'false') -%}
        {{ exceptions.raise_compiler_error("dry_run must be true or false, got '" ~ raw ~ "'") }}
    {%- endif -%}
    {{ return(raw) }}
{%- endmacro %}
