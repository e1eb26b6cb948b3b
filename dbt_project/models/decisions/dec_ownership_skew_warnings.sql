{#- Owners holding more accounts after this run than policy.crm.ownership_skew_threshold
    (Salesforce slows down and throws lock errors on skewed ownership). One row per such owner;
    empty when all is well. -#}
with

accounts_after as (
    select * from {{ ref('dec_accounts_after') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

owner_counts as (
    select
        owner_id,
        count(*) as account_count
    from accounts_after
    where owner_id is not null
    group by owner_id
),

final as (
    select
        run_context.run_id,
        run_context.as_of_date,
        owner_counts.owner_id,
        owner_counts.account_count,
        {{ policy_number('crm.ownership_skew_threshold') }} as skew_threshold,
        'owner holds ' || cast(owner_counts.account_count as {{ dbt.type_string() }})
        || ' accounts, above the ownership skew threshold' as warning
    from owner_counts
    cross join run_context
    where owner_counts.account_count > {{ policy_number('crm.ownership_skew_threshold') }}
)

select * from final
