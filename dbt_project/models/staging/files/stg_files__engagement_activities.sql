with

source as (
    select * from {{ source('files', 'engagement_activities') }}
),

renamed as (
    select
        cast(activity_id as {{ dbt.type_string() }}) as engagement_activity_id,
        {{ normalize_domain('account_domain') }} as web_domain,
        lower(trim(contact_email)) as contact_email,
        lower(trim(rep_email)) as rep_email,
        {#- exports use lower case; map onto the CRM's picklist values -#}
        case lower(trim(activity_type))
            when 'call' then 'Call'
            when 'email' then 'Email'
            when 'meeting' then 'Meeting'
            when 'linkedin' then 'LinkedIn'
            else 'Other'
        end as activity_type,
        case lower(trim(direction))
            when 'inbound' then 'Inbound'
            when 'outbound' then 'Outbound'
        end as direction,
        coalesce(is_automated, false) as is_automated,
        occurred_at,
        cast(occurred_at as date) as activity_date,
        _file_name as file_name,
        _loaded_at as loaded_at,
        row_number() over (
            partition by activity_id order by _loaded_at desc, _file_name desc
        ) as load_rank
    from source
),

deduplicated as (
    select
        engagement_activity_id,
        web_domain,
        contact_email,
        rep_email,
        activity_type,
        direction,
        is_automated,
        occurred_at,
        activity_date,
        file_name,
        loaded_at
    from renamed
    where load_rank = 1
)

select * from deduplicated
