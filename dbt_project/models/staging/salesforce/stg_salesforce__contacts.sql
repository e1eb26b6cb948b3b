with

source as (
    {{ latest_versions(source('salesforce', 'contact')) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as contact_id,
        account_id,
        owner_id,
        lower(trim(email)) as email,
        title,
        coalesce(is_key_contact_c, false) as is_key_contact,
        created_date as created_at,
        system_modstamp as modified_at
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('Contact') }}
)

select * from renamed
