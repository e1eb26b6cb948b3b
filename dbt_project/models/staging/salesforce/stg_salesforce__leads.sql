with

source as (
    {{ latest_versions(source('salesforce', 'lead')) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as lead_id,
        owner_id,
        company as company_name,
        lower(trim(email)) as email,
        website,
        lead_source,
        status as lead_status,
        coalesce(is_converted, false) as is_converted,
        converted_account_id,
        created_date as created_at,
        cast(created_date as date) as created_date,
        system_modstamp as modified_at
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('Lead') }}
)

select * from renamed
