{#- The write-back payload (R11): the desired CRM value of every writable Account field after
    this run's decisions, with the value read this run (before_*), ONLY for accounts where at
    least one desired value differs (`is distinct from`). Columns are the dlt snake_case of the
    Salesforce field names (owner_id = OwnerId, book_status_c = Book_Status__c, ...).
    A processed return request (accepted or rejected) is cleared. Only enrolled accounts are
    written: those owned before the run by a pool user or an active book rep, and any account a
    decision of this run moves; accounts of non-book users (an AE) or of reps who left are
    not managed by dynamic-books and are never touched. -#}
with

accounts_after as (
    select * from {{ ref('dec_accounts_after') }}
),

crm_accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

desired as (
    select
        crm_accounts.account_id,
        accounts_after.run_id,
        accounts_after.as_of_date,
        accounts_after.applied_decision_kind,
        accounts_after.request_outcome,

        crm_accounts.owner_id as before_owner_id,
        crm_accounts.book_status as before_book_status_c,
        crm_accounts.crm_last_touch_date as before_last_touch_date_c,
        crm_accounts.distribution_date as before_distribution_date_c,
        crm_accounts.distribution_reason as before_distribution_reason_c,
        crm_accounts.return_date as before_return_date_c,
        crm_accounts.return_reason as before_return_reason_c,
        crm_accounts.rest_until_date as before_rest_until_c,
        crm_accounts.pending_return_reason as before_return_requested_c,
        crm_accounts.return_requested_by_id as before_return_requested_by_c,

        accounts_after.owner_id,
        accounts_after.state as book_status_c,
        accounts_after.last_meaningful_touch_date as last_touch_date_c,
        case
            when accounts_after.applied_decision_kind in ('signal_route', 'distribute')
                then accounts_after.as_of_date
            else crm_accounts.distribution_date
        end as distribution_date_c,
        case
            when accounts_after.applied_decision_kind in ('signal_route', 'distribute')
                then accounts_after.applied_reason
            else crm_accounts.distribution_reason
        end as distribution_reason_c,
        case
            when accounts_after.applied_decision_kind in ('return', 'retrieve')
                then accounts_after.as_of_date
            else crm_accounts.return_date
        end as return_date_c,
        case
            when accounts_after.applied_decision_kind = 'return'
                then accounts_after.applied_reason
            when accounts_after.applied_decision_kind = 'retrieve'
                then cast(null as {{ dbt.type_string() }})
            else crm_accounts.return_reason
        end as return_reason_c,
        case
            when accounts_after.applied_decision_kind is not null
                then accounts_after.rest_until_date
            else crm_accounts.rest_until_date
        end as rest_until_c,
        case
            when accounts_after.request_outcome is not null
                then cast(null as {{ dbt.type_string() }})
            else crm_accounts.pending_return_reason
        end as return_requested_c,
        case
            when accounts_after.request_outcome is not null
                then cast(null as {{ dbt.type_string() }})
            else crm_accounts.return_requested_by_id
        end as return_requested_by_c
    from accounts_after
    inner join crm_accounts
        on accounts_after.account_id = crm_accounts.account_id
    where
        accounts_after.owner_kind_before in ('pool', 'rep')
        or accounts_after.applied_decision_kind is not null
),

final as (
    select *
    from desired
    where
        owner_id is distinct from before_owner_id
        or book_status_c is distinct from before_book_status_c
        or last_touch_date_c is distinct from before_last_touch_date_c
        or distribution_date_c is distinct from before_distribution_date_c
        or distribution_reason_c is distinct from before_distribution_reason_c
        or return_date_c is distinct from before_return_date_c
        or return_reason_c is distinct from before_return_reason_c
        or rest_until_c is distinct from before_rest_until_c
        or return_requested_c is distinct from before_return_requested_c
        or return_requested_by_c is distinct from before_return_requested_by_c
)

select * from final
