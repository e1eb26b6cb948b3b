with

source as (
    {{ latest_versions(source('salesforce', 'opportunity')) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as opportunity_id,
        account_id,
        owner_id,
        name as opportunity_name,
        stage_name,
        cast(amount as {{ dbt.type_float() }}) as amount,
        close_date,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_won, false) as is_won,
        coalesce(close_date_push_count_c, 0) as close_date_push_count,
        created_date as created_at,
        cast(created_date as date) as created_date,
        system_modstamp as modified_at
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('Opportunity') }}
)

select * from renamed
