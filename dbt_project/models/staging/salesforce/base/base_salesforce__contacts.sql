{#- The latest version of every Contact, deleted ones included (is_deleted), typed and renamed:
    incremental like base_salesforce__tasks (two million contacts at L; a day changes a few).
    stg_salesforce__contacts filters out deletes and quarantined ids. -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='contact_id') }}
{%- set raw_contacts = source('salesforce', 'contact') %}
with

source as (
    {{ latest_versions(raw_contacts, keep_ids=ids_loaded_since_last_build(raw_contacts)) }}
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
        system_modstamp as modified_at,
        is_deleted,
        _dlt_load_id as raw_load_id
    from source
    where id is not null
)

select * from renamed
