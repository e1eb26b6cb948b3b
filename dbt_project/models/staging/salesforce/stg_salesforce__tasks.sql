with

source as (
    {{ latest_versions(source('salesforce', 'task')) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as task_id,
        coalesce(account_id, what_id) as account_id,
        owner_id,
        who_id as contact_id,
        subject,
        type as activity_type,
        coalesce(activity_date, cast(created_date as date)) as activity_date,
        status as task_status,
        coalesce(is_archived, false) as is_archived,
        direction_c as direction,
        coalesce(is_automated_c, false) as is_automated,
        source_c as activity_source,
        created_date as created_at,
        system_modstamp as modified_at
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('Task') }}
)

select * from renamed
