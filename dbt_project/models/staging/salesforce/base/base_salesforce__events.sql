{#- The latest version of every Event, deleted ones included (is_deleted), renamed; incremental
    for the same reason as base_salesforce__tasks. -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='event_id') }}
{%- set raw_events = source('salesforce', 'event') %}
with

source as (
    {{ latest_versions(raw_events, keep_ids=ids_loaded_since_last_build(raw_events)) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as event_id,
        coalesce(account_id, what_id) as account_id,
        owner_id,
        who_id as contact_id,
        subject,
        type as activity_type,
        coalesce(activity_date, cast(created_date as date)) as activity_date,
        cast(null as {{ dbt.type_string() }}) as task_status,
        coalesce(is_archived, false) as is_archived,
        direction_c as direction,
        coalesce(is_automated_c, false) as is_automated,
        source_c as activity_source,
        created_date as created_at,
        system_modstamp as modified_at,
        is_deleted,
        _dlt_load_id as raw_load_id
    from source
    where id is not null
)

select * from renamed
