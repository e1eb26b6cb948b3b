{#- AccountHistory rows are immutable (no SystemModstamp): dedupe on created date and load. -#}
with

source as (
    {{ latest_versions(source('salesforce', 'account_history'),
                       order_by='created_date desc, _dlt_load_id desc, _dlt_id desc') }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as account_history_id,
        account_id,
        created_by_id,
        field as field_name,
        old_value,
        new_value,
        created_date as created_at,
        cast(created_date as date) as changed_date
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('AccountHistory') }}
)

select * from renamed
