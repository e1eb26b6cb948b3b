{#- The latest version of every Task, deleted ones included (is_deleted), renamed: the 20M-row
    activity history is rebuilt only for the ids a load touched (incremental), not rewritten
    every run. stg_salesforce__tasks filters out deletes and quarantined ids. -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='task_id') }}
{%- set raw_tasks = source('salesforce', 'task') %}
with

source as (
    {{ latest_versions(raw_tasks, keep_ids=ids_loaded_since_last_build(raw_tasks)) }}
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
        system_modstamp as modified_at,
        is_deleted,
        _dlt_load_id as raw_load_id
    from source
    where id is not null
)

select * from renamed
