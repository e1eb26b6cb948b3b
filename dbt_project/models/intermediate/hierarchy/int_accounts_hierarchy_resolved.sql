{#- Every account's ultimate parent and family (bounded walk, cycles flagged, never looped on). -#}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

parent_links as (
    select
        account_id,
        case when parent_account_id = account_id then account_id else parent_account_id end
            as parent_account_id
    from accounts
),

walked as (
    {{ resolve_hierarchy('parent_links', 'account_id', 'parent_account_id', max_depth=8) }}
),

resolved as (
    select
        account_id,
        parent_account_id,
        depth as hierarchy_depth,
        is_in_cycle_raw as is_in_hierarchy_cycle,
        is_truncated_raw and not is_in_cycle_raw as is_hierarchy_truncated,
        has_missing_parent_raw as has_missing_parent,
        case
            when is_truncated_raw then smallest_chain_id
            else deepest_ancestor_id
        end as family_id
    from walked
),

final as (
    select
        account_id,
        parent_account_id,
        family_id,
        family_id as ultimate_parent_id,
        account_id = family_id as is_family_head,
        count(*) over (partition by family_id) as family_size,
        hierarchy_depth,
        is_in_hierarchy_cycle,
        is_hierarchy_truncated,
        has_missing_parent,
        is_in_hierarchy_cycle or is_hierarchy_truncated or has_missing_parent
            as has_hierarchy_issue
    from resolved
)

select * from final
