{#- Meaningful-touch recency and volume per account: last touch overall and by the current
    owner, touches and distinct contacts touched in the last 30/60/90 days. "Within the last N
    days" means 0 <= days before the as-of date <= N, both ends inclusive, the same rule as the
    working window of int_account_states_derived (a touch exactly 30 days ago counts in
    touches_30d and keeps a 30-day-window account working). Accounts without touches get zeros
    and null dates.
    Incremental: aggregating the whole activity history is the largest cost of a daily build,
    and a day changes few accounts. A run recomputes only the accounts whose inputs changed
    (account or activity rows loaded since the rows it holds, file activities resolved
    differently, quarantine in or out), whose boundary date has come (next_boundary_date: the
    first day a touch leaves a window or a future-dated one arrives), which were computed for a
    later as-of date (a run back in time), or which carry another fingerprint (policy or SQL
    changed: every row). Every other row is exactly what a full rebuild would give. -#}
{{ config(
    post_hook=prune_missing_keys('account_id', 'stg_salesforce__accounts'),
    **upsert_by_key('account_id')
) }}
{%- set windows = [30, 60, 90] -%}
{%- set fingerprint = lineage_fingerprint() -%}
{%- set incremental = is_incremental() and relation_has_column(this, 'build_fingerprint') -%}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

activities as (
    select * from {{ ref('int_activities_classified') }}
),

file_activities as (
    select * from {{ ref('int_engagement_activities_resolved') }}
),

task_versions as (
    select * from {{ ref('base_salesforce__tasks') }}
),

event_versions as (
    select * from {{ ref('base_salesforce__events') }}
),

raw_accounts as (
    select * from {{ source('salesforce', 'account') }}
),

quarantined as (
    select * from {{ source('ops', 'quarantined_ids') }}
),

{% if incremental %}
previous as (
    select * from {{ this }}
),

{% endif %}
inputs_loaded as (
    select max(load_id) as load_id
    from (
        select max(raw_load_id) as load_id from task_versions
        union all
        select max(raw_load_id) as load_id from event_versions
        union all
        select max(_dlt_load_id) as load_id from raw_accounts
    ) as per_table
),

{# Every account a quarantined row stands for: an account itself or a quarantined activity's. -#}
quarantined_accounts as (
    select quarantined.record_id as account_id
    from quarantined
    where quarantined.object = 'Account'
    union all
    select task_versions.account_id
    from task_versions
    where task_versions.task_id in (
        select quarantined.record_id
        from quarantined
        where quarantined.object = 'Task'
    )
    union all
    select event_versions.account_id
    from event_versions
    where event_versions.event_id in (
        select quarantined.record_id
        from quarantined
        where quarantined.object = 'Event'
    )
),

quarantined_account_ids as (
    select distinct quarantined_accounts.account_id
    from quarantined_accounts
    where quarantined_accounts.account_id is not null
),

{# File activities reach an account through domains, users and contacts that any account,
    user or contact row can change; their resolved rows are few, so each account's are hashed
    and compared with the hash its row was computed from. -#}
file_inputs as (
    select
        account_id,
        {{ dbt.hash(dbt.listagg(
            dbt.concat([
                'activity_id', "'|'",
                "coalesce(owner_id, '')", "'|'",
                "coalesce(contact_key, '')", "'|'",
                "coalesce(activity_type, '')", "'|'",
                "coalesce(direction, '')", "'|'",
                "coalesce(cast(is_automated as " ~ dbt.type_string() ~ "), '')", "'|'",
                "coalesce(activity_source, '')", "'|'",
                "coalesce(cast(activity_date as " ~ dbt.type_string() ~ "), '')"
            ]),
            "';'",
            "order by activity_id"
        )) }} as file_inputs_hash
    from file_activities
    where account_id is not null
    group by account_id
),

{% if incremental %}
build_state as (
    select max(inputs_load_id) as inputs_load_id
    from previous
),

{# Activity versions loaded since: the account each is on and the one the version it replaced
    was on (an activity moved away changes the account it left). -#}
activities_loaded as (
    select
        task_versions.account_id,
        task_versions.previous_account_id,
        task_versions.previous_raw_load_id
    from task_versions
    where task_versions.raw_load_id > (select build_state.inputs_load_id from build_state)
    union all
    select
        event_versions.account_id,
        event_versions.previous_account_id,
        event_versions.previous_raw_load_id
    from event_versions
    where event_versions.raw_load_id > (select build_state.inputs_load_id from build_state)
),

{# A replaced version this table never saw (two loads of one activity since it was built, e.g.
    after a crash) hides the account the rows were computed with: every account then. -#}
unseen_replacements as (
    select count(*) as replacements
    from activities_loaded
    where activities_loaded.previous_raw_load_id
        > (select build_state.inputs_load_id from build_state)
),

changed_accounts as (
    select raw_accounts.id as account_id
    from raw_accounts
    where raw_accounts._dlt_load_id > (select build_state.inputs_load_id from build_state)
    union all
    select activities_loaded.account_id
    from activities_loaded
    union all
    select activities_loaded.previous_account_id as account_id
    from activities_loaded
    union all
    select account_id from quarantined_accounts
    union all
    select previous.account_id
    from previous
    where
        previous.had_quarantined_input
        or previous.next_boundary_date <= {{ as_of_date() }}
        or previous.computed_as_of_date > {{ as_of_date() }}
        or previous.build_fingerprint != '{{ fingerprint }}'
    union all
    select coalesce(file_inputs.account_id, previous.account_id) as account_id
    from file_inputs
    full outer join previous
        on file_inputs.account_id = previous.account_id
    where
        coalesce(file_inputs.file_inputs_hash, '') != coalesce(previous.file_inputs_hash, '')
    union all
    select accounts.account_id
    from accounts
    left join previous
        on accounts.account_id = previous.account_id
    where previous.account_id is null
),

scoped_accounts as (
    select *
    from accounts
    where
        accounts.account_id in (
            select changed_accounts.account_id
            from changed_accounts
            where changed_accounts.account_id is not null
        )
        or (select unseen_replacements.replacements from unseen_replacements) > 0
),

{% else %}
scoped_accounts as (
    select * from accounts
),

{% endif %}
touches as (
    select
        activities.account_id,
        activities.activity_id,
        activities.contact_key,
        activities.activity_date,
        activities.owner_id = scoped_accounts.owner_id as is_by_current_owner,
        {{ dbt.datediff('activities.activity_date', as_of_date(), 'day') }} as age_days
    from activities
    inner join scoped_accounts
        on activities.account_id = scoped_accounts.account_id
    where activities.is_meaningful
),

aggregated as (
    select
        account_id,
        max(activity_date) as last_meaningful_touch_date,
        max(case when is_by_current_owner then activity_date end) as last_touch_by_owner_date,
        {%- for days in windows %}
        sum(case when age_days between 0 and {{ days }} then 1 else 0 end) as touches_{{ days }}d,
        count(distinct case when age_days between 0 and {{ days }} then contact_key end)
            as contacts_touched_{{ days }}d{% if not loop.last %},{% endif %}
        {%- endfor %}
    from touches
    group by account_id
),

{# The first day after the as-of date on which an account's figures change with no new data:
    a touch leaving a window (the day after it is N days old) or a future-dated activity
    reaching its date (it may become meaningful then). -#}
boundaries as (
    select
        activities.account_id,
        min(
            case
                when activities.activity_date > {{ as_of_date() }} then activities.activity_date
                {%- for days in windows %}
                when {{ dbt.datediff('activities.activity_date', as_of_date(), 'day') }}
                    <= {{ days }}
                    then cast({{ dbt.dateadd('day', days + 1, 'activities.activity_date') }}
                        as date)
                {%- endfor %}
            end
        ) as next_boundary_date
    from activities
    inner join scoped_accounts
        on activities.account_id = scoped_accounts.account_id
    where activities.is_meaningful or activities.not_meaningful_reason = 'future'
    group by activities.account_id
),

final as (
    select
        scoped_accounts.account_id,
        aggregated.last_meaningful_touch_date,
        aggregated.last_touch_by_owner_date,
        {%- for days in windows %}
        coalesce(aggregated.touches_{{ days }}d, 0) as touches_{{ days }}d,
        coalesce(aggregated.contacts_touched_{{ days }}d, 0) as contacts_touched_{{ days }}d,
        {%- endfor %}
        boundaries.next_boundary_date,
        {{ as_of_date() }} as computed_as_of_date,
        '{{ fingerprint }}' as build_fingerprint,
        (select inputs_loaded.load_id from inputs_loaded) as inputs_load_id,
        file_inputs.file_inputs_hash,
        quarantined_account_ids.account_id is not null as had_quarantined_input
    from scoped_accounts
    left join aggregated
        on scoped_accounts.account_id = aggregated.account_id
    left join boundaries
        on scoped_accounts.account_id = boundaries.account_id
    left join file_inputs
        on scoped_accounts.account_id = file_inputs.account_id
    left join quarantined_account_ids
        on scoped_accounts.account_id = quarantined_account_ids.account_id
)

select * from final
