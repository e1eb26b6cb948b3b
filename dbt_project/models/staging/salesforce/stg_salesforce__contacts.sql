{#- Live Contacts: the latest versions in base_salesforce__contacts without deletes and without
    the ids the latest data-contract run quarantined. A view: its one reader
    (int_engagement_activities_resolved) reads it once. -#}
{{ config(materialized='view') }}

with

versions as (
    select * from {{ ref('base_salesforce__contacts') }}
),

live as (
    select
        contact_id,
        account_id,
        owner_id,
        email,
        title,
        is_key_contact,
        created_at,
        modified_at
    from versions
    where
        not is_deleted
        and {{ is_not_quarantined('Contact', 'contact_id') }}
)

select * from live
