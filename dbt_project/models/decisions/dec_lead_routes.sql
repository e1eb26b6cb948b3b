{#- Step 3b (R7): an inbound lead matched (R5, exactly one account) to an account that a rep owns
    after this run's decisions goes to that owner: one lead_route row per such lead not already
    owned by that rep, not converted, and created within the inbound_lead signal window up to
    the as-of date. Reported for the lead write-back; the account itself does not move. A
    'signals' run routes only leads of its signals' accounts; a 'returns' run routes none. -#}
with

leads_matched as (
    select * from {{ ref('int_leads_matched') }}
),

leads as (
    select * from {{ ref('stg_salesforce__leads') }}
),

accounts_after as (
    select * from {{ ref('dec_accounts_after') }}
),

users as (
    select * from {{ ref('int_users_classified') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

cycle_accounts as (
    select * from {{ ref('dec_cycle_accounts') }}
),

rep_owned_accounts as (
    select
        accounts_after.account_id,
        accounts_after.owner_id,
        accounts_after.state,
        accounts_after.segment_key
    from accounts_after
    inner join users
        on accounts_after.owner_id = users.user_id
    where users.owner_kind = 'rep'
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        rep_owned_accounts.account_id,
        'lead_route' as decision_kind,
        leads.owner_id as from_owner_id,
        rep_owned_accounts.owner_id as to_owner_id,
        rep_owned_accounts.state as from_state,
        rep_owned_accounts.state as to_state,
        'inbound_lead' as reason,
        'R7 lead routing: lead ' || leads.lead_id || ' matched by '
        || leads_matched.match_method || ' to an owned account -> its owner' as rule,
        cast(null as {{ dbt.type_float() }}) as priority_score,
        cast(null as {{ dbt.type_float() }}) as fit_score,
        cast(null as {{ dbt.type_float() }}) as timing_score,
        rep_owned_accounts.segment_key,
        cast(null as {{ dbt.type_string() }}) as slot_kind,
        cast(null as {{ dbt.type_int() }}) as slot_number,
        cast(null as {{ dbt.type_int() }}) as round_number,
        cast(null as {{ dbt.type_int() }}) as pick_number,
        cast(null as date) as rest_until_date,
        cast(null as {{ dbt.type_string() }}) as linked_account_id,
        leads.lead_id,
        run_context.policy_version
    from leads_matched
    inner join leads
        on leads_matched.lead_id = leads.lead_id
    inner join rep_owned_accounts
        on leads_matched.matched_account_id = rep_owned_accounts.account_id
    cross join run_context
    where
        leads_matched.match_status = 'matched'
        and not leads.is_converted
        and leads.owner_id is distinct from rep_owned_accounts.owner_id
        and (
            run_context.cycle_mode = 'full'
            or (
                run_context.cycle_mode = 'signals'
                and rep_owned_accounts.account_id in (
                    select cycle_accounts.account_id from cycle_accounts
                )
            )
        )
        and leads.created_date <= run_context.as_of_date
        and leads.created_date > {{ dbt.dateadd(
            'day', '-1 * ' ~ policy_number('timing.signals.inbound_lead.window_days'),
            'run_context.as_of_date') }}
)

select * from final
