{#- The run's parameters as one row, so every decision model reads the as-of date from data
    (the property tests swap this table to replay many dates against one compilation). -#}
with

final as (
    select
        cast('{{ var("run_id") }}' as {{ dbt.type_string() }}) as run_id,
        {{ as_of_date() }} as as_of_date,
        cast('{{ var("policy_version") }}' as {{ dbt.type_string() }}) as policy_version
)

select * from final
