{#- Owner changes made by hand in the CRM (an AccountHistory OwnerId change by a user other than
    people.manual_changes.write_back_users, still standing): kind manual_assign (to anyone but a
    pool user) or manual_release (to a pool user), with changed_by_id the person who made it.
    A move from one pool user to another is housekeeping, not recorded.
    Recorded once, by the first 'full' run that sees the change while it is younger than
    lifecycle.grace_period_days (the rules respect it that long: dec_retrievals never takes it
    back); a re-run of that as-of date records it again under its own run id. A record, never
    applied (the CRM already holds the change). -#}
{%- set grace = policy_number('lifecycle.grace_period_days') -%}
with

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

users as (
    select * from {{ ref('int_users_classified') }}
),

{#- Changes an earlier as-of date already recorded. The history is read as a relation, not a
    ref, because book_decisions is built from this model. -#}
{%- set history = adapter.get_relation(
    database=target.database, schema='decisions', identifier='book_decisions'
) %}

recorded as (
    {%- if history is not none %}
    select
        account_id,
        to_owner_id,
        max(as_of_date) as recorded_date
    from {{ history }}
    where
        decision_kind in ('manual_assign', 'manual_release')
        and as_of_date < (select as_of_date from run_context)
    group by account_id, to_owner_id
    {%- else %}
    select
        account_id,
        owner_id as to_owner_id,
        cast(null as date) as recorded_date
    from accounts
    where 1 = 0
    {%- endif %}
),

recent as (
    select
        accounts.*,
        cast({{ dbt.dateadd('day', grace, 'accounts.manual_change_date') }} as date)
            as grace_until_date
    from accounts
    cross join run_context
    left join users as from_users
        on accounts.manual_from_owner_id = from_users.user_id
    left join recorded
        on
            accounts.account_id = recorded.account_id
            and accounts.owner_id = recorded.to_owner_id
            and accounts.manual_change_date <= recorded.recorded_date
    where
        recorded.account_id is null
        and run_context.cycle_mode = 'full'
        and not (accounts.owner_kind = 'pool' and coalesce(from_users.owner_kind = 'pool', false))
        and accounts.manual_change_date is not null
        and accounts.manual_change_date <= run_context.as_of_date
        and accounts.manual_change_date
        >= cast({{ dbt.dateadd('day', '-' ~ grace, 'run_context.as_of_date') }} as date)
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        recent.account_id,
        case
            when recent.owner_kind = 'pool' then 'manual_release' else 'manual_assign'
        end as decision_kind,
        recent.manual_from_owner_id as from_owner_id,
        recent.owner_id as to_owner_id,
        recent.state as from_state,
        recent.state as to_state,
        'changed_by_person' as reason,
        'Manual owner change on '
        || cast(recent.manual_change_date as {{ dbt.type_string() }})
        || ' by ' || coalesce(recent.manual_changed_by_id, '?')
        || ': respected until ' || cast(recent.grace_until_date as {{ dbt.type_string() }})
            as rule,
        recent.priority_score,
        recent.fit_score,
        recent.timing_score,
        recent.segment_key,
        cast(null as {{ dbt.type_string() }}) as slot_kind,
        cast(null as {{ dbt.type_int() }}) as slot_number,
        cast(null as {{ dbt.type_int() }}) as round_number,
        cast(null as date) as rest_until_date,
        cast(null as {{ dbt.type_string() }}) as linked_account_id,
        recent.manual_changed_by_id as changed_by_id,
        run_context.policy_version
    from recent
    cross join run_context
)

select * from final
