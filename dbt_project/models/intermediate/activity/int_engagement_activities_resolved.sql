{#- Engagement-platform activities resolved to CRM ids, in int_activities_classified's shape:
    the account through a web domain exactly one account holds, the rep through User.Email, the
    contact through Contact.Email (else the e-mail itself is the contact key). A table, not part
    of the classified view: resolving by e-mail dedupes every contact (2M at L), which cost more
    than the task history in each of the view's four readers; stored once here, it is ~2% of the
    activity rows. Nothing here depends on the as-of date or the policy. -#}
with

engagement_activities as (
    select * from {{ ref('stg_files__engagement_activities') }}
),

web_domains as (
    select * from {{ ref('int_web_domains_mapped') }}
),

users as (
    select * from {{ ref('stg_salesforce__users') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
),

users_by_email as (
    select
        email,
        min(user_id) as user_id
    from users
    where email is not null
    group by email
),

contacts_by_email as (
    {#- only the e-mails the engagement rows use: at L ~300k of 2M contacts, 0.7 s less #}
    select
        email,
        min(contact_id) as contact_id
    from contacts
    where email in (select engagement_activities.contact_email from engagement_activities)
    group by email
),

final as (
    select
        {{ dbt.concat(["'file:'", 'engagement_activities.engagement_activity_id']) }}
            as activity_id,
        'engagement_file' as origin,
        web_domains.account_id,
        users_by_email.user_id as owner_id,
        coalesce(contacts_by_email.contact_id, engagement_activities.contact_email)
            as contact_key,
        engagement_activities.activity_type,
        coalesce(engagement_activities.direction, 'Outbound') as direction,
        engagement_activities.is_automated,
        case when engagement_activities.is_automated then 'Sequence' else 'Integration' end
            as activity_source,
        engagement_activities.activity_date,
        false as is_open
    from engagement_activities
    left join web_domains
        on engagement_activities.web_domain = web_domains.web_domain
    left join users_by_email
        on engagement_activities.rep_email = users_by_email.email
    left join contacts_by_email
        on engagement_activities.contact_email = contacts_by_email.email
)

select * from final
