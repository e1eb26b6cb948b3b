{#- The run's parameters as one row, so every decision model reads the as-of date and the cycle
    mode from data (the property tests swap this table to replay many dates and modes against
    one compilation). Values come from ops.run_context via macros/policy.sql. cycle_mode:
    'full' (the weekly engine), 'signals' (route the run's hot signals only) or 'returns'
    (the run's listed return requests and their swaps only). -#}
with

final as (
    select
        cast({{ run_id() }} as {{ dbt.type_string() }}) as run_id,
        {{ as_of_date() }} as as_of_date,
        cast({{ policy_version() }} as {{ dbt.type_string() }}) as policy_version,
        cast({{ cycle_mode() }} as {{ dbt.type_string() }}) as cycle_mode
)

select * from final
