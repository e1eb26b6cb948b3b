{#- Book roles of the policy: the keys of policy.books that describe a book (have slots). -#}
{% macro policy_book_roles() -%}
    {%- set roles = [] -%}
    {%- for key, value in policy_get('books').items() -%}
        {%- if value is mapping and 'slots' in value -%}
            {%- do roles.append(key) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(roles | sort) }}
{%- endmacro %}

{#- The policy's timing signals as rows (signal_type, weight, half_life_days, window_days,
    threshold), so models join signals to their configuration instead of branching in Jinja. -#}
{% macro policy_signal_config_rows() -%}
    {%- set signals = policy_get('timing.signals') -%}
    {%- for signal_type in signals | sort %}
        {%- set config = signals[signal_type] %}
    select
        {{ sql_string_literal(signal_type) }} as signal_type,
        cast({{ sql_number(config['weight'], 'timing.signals.' ~ signal_type ~ '.weight') }}
            as {{ dbt.type_float() }}) as weight,
        cast({{ sql_number(config['half_life_days'], 'timing.signals.' ~ signal_type ~ '.half_life_days') }}
            as {{ dbt.type_float() }}) as half_life_days,
        cast({{ sql_number(config['window_days'], 'timing.signals.' ~ signal_type ~ '.window_days') }}
            as {{ dbt.type_int() }}) as window_days,
        {%- if config.get('threshold') is not none %}
        cast({{ sql_number(config['threshold'], 'timing.signals.' ~ signal_type ~ '.threshold') }}
            as {{ dbt.type_float() }}) as threshold
        {%- else %}
        cast(null as {{ dbt.type_float() }}) as threshold
        {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
