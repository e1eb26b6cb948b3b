{#- Public (R15): who owned what when. Grain: one row per (account, as-of date) on which the
    account's owner or state differed from its latest earlier row - the first run records
    every account. Append-only (incremental): a run adds only changes, and re-running an
    as-of date already recorded adds nothing, so history is never rewritten. An account's row
    holds from as_of_date until the next row of that account (use lead() for the end). -#}
{{ config(materialized='incremental', incremental_strategy='append') }}
with

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

current_rows as (
    select
        {{ dbt.concat(['account_id', "':'", dbt.cast(as_of_date(), dbt.type_string())]) }}
            as ownership_history_id,
        account_id,
        {{ as_of_date() }} as as_of_date,
        owner_id,
        owner_kind,
        state,
        state_reason,
        segment_key,
        {{ mart_run_id() }} as run_id,
        {{ policy_version() }} as policy_version
    from accounts
),

{%- if is_incremental() %}

latest_recorded as (
    select
        account_id,
        owner_id,
        state,
        row_number() over (partition by account_id order by as_of_date desc) as recency_rank
    from {{ this }}
    where as_of_date < {{ as_of_date() }}
),

changed as (
    select current_rows.*
    from current_rows
    left join latest_recorded
        on current_rows.account_id = latest_recorded.account_id
        and latest_recorded.recency_rank = 1
    where (
        latest_recorded.account_id is null
        or coalesce(current_rows.owner_id, '') <> coalesce(latest_recorded.owner_id, '')
        or current_rows.state <> latest_recorded.state
    )
    and not exists (
        select 1
        from {{ this }} as recorded
        where recorded.account_id = current_rows.account_id
            and recorded.as_of_date = current_rows.as_of_date
    )
),

{%- else %}

changed as (
    select * from current_rows
),

{%- endif %}

final as (
    select * from changed
)

select * from final
