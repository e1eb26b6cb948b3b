{#- Every activity (Salesforce tasks and events, engagement-platform exports) in one shape, with
    whether it is a meaningful touch under policy.meaningful_activity and, if not, why.
    Rules, in order: activities on no account or on an account staging does not hold (deleted or
    quarantined: account_id null, referenced_account_id kept), future-dated and open (not done)
    tasks never count; the type must be listed; an inbound reply counts whatever its source
    (count_inbound_replies); otherwise the direction must be listed, the source must not be
    excluded and, with manual_only, automated steps (Is_Automated__c or source Sequence) do not
    count. A missing direction is read as Outbound (CRM default for logged activities).
    A view, not a table: writing its 20M rows at L cost more (23 s) than its four readers
    classifying on the fly (+15 s together), and a daily run then rewrites nothing here. The
    engagement rows arrive resolved to CRM ids (int_engagement_activities_resolved, a table).
    A table on Spark, which would run the view's whole plan again for each of its readers. -#}
{{ config(materialized='table' if target.type == 'spark' else 'view') }}
{%- set manual_only = policy_get('meaningful_activity.manual_only') -%}
{%- set count_inbound = policy_get('meaningful_activity.count_inbound_replies') -%}
with

tasks as (
    select * from {{ ref('stg_salesforce__tasks') }}
),

events as (
    select * from {{ ref('stg_salesforce__events') }}
),

file_activities as (
    select * from {{ ref('int_engagement_activities_resolved') }}
),

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

crm_activities as (
    select
        {{ dbt.concat(["'task:'", 'task_id']) }} as activity_id,
        'salesforce_task' as origin,
        account_id,
        owner_id,
        contact_id as contact_key,
        activity_type,
        coalesce(direction, 'Outbound') as direction,
        is_automated,
        activity_source,
        activity_date,
        coalesce(task_status, 'Completed') = 'Open' as is_open
    from tasks
    union all
    select
        {{ dbt.concat(["'event:'", 'event_id']) }} as activity_id,
        'salesforce_event' as origin,
        account_id,
        owner_id,
        contact_id as contact_key,
        activity_type,
        coalesce(direction, 'Outbound') as direction,
        is_automated,
        activity_source,
        activity_date,
        false as is_open
    from events
),

all_activities as (
    select * from crm_activities
    union all
    select * from file_activities
),

account_resolved as (
    {#- An activity on an account staging does not hold (deleted, quarantined, never loaded)
        stays for rep activity counts but reaches no account: account_not_found. #}
    select
        all_activities.*,
        accounts.account_id as known_account_id
    from all_activities
    left join accounts
        on all_activities.account_id = accounts.account_id
),

classified as (
    select
        *,
        case
            when account_id is null then 'no_account'
            when known_account_id is null then 'account_not_found'
            when activity_date is null then 'no_date'
            when activity_date > {{ as_of_date() }} then 'future'
            when is_open then 'not_completed'
            when activity_type is null
                or activity_type not in ({{ policy_string_list('meaningful_activity.types') }})
                then 'type_not_counted'
            {%- if count_inbound %}
            when direction = 'Inbound' then null
            {%- endif %}
            when direction not in ({{ policy_string_list('meaningful_activity.directions') }})
                then 'direction_not_counted'
            when activity_source in (
                {{ policy_string_list('meaningful_activity.excluded_sources') }}
            ) then 'excluded_source'
            {%- if manual_only %}
            when is_automated or activity_source = 'Sequence' then 'automated'
            {%- endif %}
        end as not_meaningful_reason
    from account_resolved
),

final as (
    select
        activity_id,
        origin,
        known_account_id as account_id,
        account_id as referenced_account_id,
        owner_id,
        contact_key,
        activity_type,
        direction,
        is_automated,
        activity_source,
        activity_date,
        is_open,
        not_meaningful_reason is null as is_meaningful,
        not_meaningful_reason
    from classified
)

select * from final
