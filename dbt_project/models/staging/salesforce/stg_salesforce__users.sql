with

source as (
    {{ latest_versions(source('salesforce', 'user')) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as user_id,
        username,
        name as user_name,
        lower(trim(email)) as email,
        coalesce(is_active, false) as is_active,
        manager_id,
        book_role_c as book_role,
        nullif(trim(book_segments_c), '') as book_segments,
        nullif(trim({{ dbt.split_part('book_segments_c', "';'", 1) }}), '') as segment_key,
        coalesce(book_segments_c like '%;%', false) as has_multiple_segments,
        ramp_start_date_c as ramp_start_date,
        out_of_office_until_c as out_of_office_until_date,
        created_date as created_at,
        system_modstamp as modified_at
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('User') }}
)

select * from renamed
