{#- Step 1 (R9): pending return requests. The reason decides the destination; a request that
    is not from the owner, has an unknown reason or targets an account outside a book is
    rejected (kind return_rejected: reported, never applied). Accepted returns go to the
    least-loaded pool user. A 'signals' run decides no returns; a 'returns' run only those of its
    listed accounts (dec_cycle_accounts). -#}
{%- set rest_days = policy_get('lifecycle.rest_days') -%}
with

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

pool_loads as (
    select * from {{ ref('dec_pool_loads') }}
),

cycle_accounts as (
    select * from {{ ref('dec_cycle_accounts') }}
),

requests as (
    select
        accounts.*,
        run_context.as_of_date
    from accounts
    cross join run_context
    where
        accounts.pending_return_reason is not null
        and (
            run_context.cycle_mode = 'full'
            or (
                run_context.cycle_mode = 'returns'
                and accounts.account_id in (select cycle_accounts.account_id from cycle_accounts)
            )
        )
),

evaluated as (
    select
        requests.*,
        case
            when requests.pending_return_reason not in (
                'bad_data', 'disqualified', 'not_now', 'no_response', 'duplicate',
                'get_back_to_me'
            ) then 'unknown_reason'
            when requests.return_requested_by_id is null then 'requester_unknown'
            when requests.owner_id is null
                or requests.return_requested_by_id <> requests.owner_id
                then 'requester_not_owner'
            when requests.owner_kind <> 'rep' then 'not_in_a_book'
            when requests.state not in ('working', 'stale') then 'state_not_returnable'
            when requests.pending_return_reason = 'get_back_to_me'
                and requests.get_back_date is null then 'get_back_date_missing'
            when requests.pending_return_reason = 'get_back_to_me'
                and requests.get_back_date <= requests.as_of_date
                then 'get_back_date_not_in_future'
        end as rejection_reason
    from requests
),

decided as (
    select
        evaluated.*,
        case
            when evaluated.rejection_reason is not null then evaluated.state
            when evaluated.pending_return_reason = 'bad_data' then 'review'
            when evaluated.pending_return_reason = 'disqualified' then 'retired'
            else 'resting'
        end as to_state,
        case
            when evaluated.rejection_reason is not null then null
            when evaluated.pending_return_reason = 'get_back_to_me'
                then evaluated.get_back_date
            {%- for reason in ['not_now', 'no_response', 'duplicate'] %}
            when evaluated.pending_return_reason = '{{ reason }}'
                then {{ dbt.dateadd('day', sql_number(rest_days[reason], 'policy.lifecycle.rest_days.' ~ reason), 'evaluated.as_of_date') }}
            {%- endfor %}
        end as new_rest_until_date
    from evaluated
),

accepted as (
    select account_id
    from decided
    where rejection_reason is null
),

{{ decisions_pool_fill_ctes('pool_assignment', 'accepted', 'pool_loads') }},

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        decided.account_id,
        case
            when decided.rejection_reason is null then 'return' else 'return_rejected'
        end as decision_kind,
        decided.owner_id as from_owner_id,
        case
            when decided.rejection_reason is null then pool_assignment.pool_user_id
            else decided.owner_id
        end as to_owner_id,
        decided.state as from_state,
        decided.to_state,
        coalesce(decided.rejection_reason, decided.pending_return_reason) as reason,
        case
            when decided.rejection_reason is null
                then 'R9 return: ' || decided.pending_return_reason || ' -> ' || decided.to_state
            else 'R9 return rejected: ' || decided.rejection_reason
        end as rule,
        decided.priority_score,
        decided.fit_score,
        decided.timing_score,
        decided.segment_key,
        case
            when decided.rejection_reason is null and decided.state in ('working', 'stale')
                then {{ decisions_owned_slot_kind('decided') }}
        end as slot_kind,
        cast(null as {{ dbt.type_int() }}) as slot_number,
        cast(null as {{ dbt.type_int() }}) as round_number,
        cast(decided.new_rest_until_date as date) as rest_until_date,
        cast(null as {{ dbt.type_string() }}) as linked_account_id,
        decided.return_requested_by_id as requested_by_id,
        decided.pending_return_reason as requested_reason,
        run_context.policy_version
    from decided
    cross join run_context
    left join pool_assignment
        on decided.account_id = pool_assignment.account_id
)

select * from final
