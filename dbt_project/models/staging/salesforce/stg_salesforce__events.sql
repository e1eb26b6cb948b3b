{#- Live Events: the latest versions in base_salesforce__events without deletes and without the
    ids the latest data-contract run quarantined. A view: the filter is cheap, the history is
    materialised once, in the base model. -#}
with

versions as (
    select * from {{ ref('base_salesforce__events') }}
),

live as (
    select
        event_id,
        account_id,
        owner_id,
        contact_id,
        subject,
        activity_type,
        activity_date,
        task_status,
        is_archived,
        direction,
        is_automated,
        activity_source,
        created_at,
        modified_at
    from versions
    where
        not is_deleted
        and {{ is_not_quarantined('Event', 'event_id') }}
)

select * from live
