{#- Public (R14): hoarding and rule-bending flags. Grain: one row per (flag_kind, subject).
      close_date_pushed: open opportunity whose close date moved later at least
        var('hoarding_min_close_date_pushes', 3) times, on an account with no meaningful touch
        within the working window.
      owner_change_outside_rules: an AccountHistory OwnerId change, on or after the first
        recorded decision (the rules were not in force before), with no decision that stands
        (book_decisions_standing) giving that account to that new owner on the change date or
        up to var('hoarding_owner_change_lag_days', 7) days before it (write-back lag): a
        superseded, held or failed decision never changed the owner, so it explains nothing.
      big_book_untouched: a rep holding more working + stale accounts than the role's
        target_size while some of them are stale (not worked). -#}
{%- set window = policy_number('lifecycle.working_window_days') -%}
{%- set min_pushes = sql_number(var('hoarding_min_close_date_pushes', 3), 'var hoarding_min_close_date_pushes') -%}
{%- set lag_days = sql_number(var('hoarding_owner_change_lag_days', 7), 'var hoarding_owner_change_lag_days') -%}
with

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

accounts as (
    select * from {{ ref('accounts') }}
),

account_history as (
    select * from {{ ref('stg_salesforce__account_history') }}
),

book_decisions as (
    select * from {{ ref('book_decisions_standing') }}
),

reps as (
    select * from {{ ref('reps') }}
),

pushed_opportunities as (
    select
        'close_date_pushed' as flag_kind,
        'opportunity' as subject_type,
        opportunities.opportunity_id as subject_id,
        opportunities.account_id,
        opportunities.owner_id as rep_id,
        cast(opportunities.close_date_push_count as {{ dbt.type_bigint() }}) as flag_count,
        'close date pushed ' || {{ dbt.cast('opportunities.close_date_push_count', dbt.type_string()) }}
            || ' times; last meaningful touch '
            || coalesce({{ dbt.cast('accounts.last_meaningful_touch_date', dbt.type_string()) }}, 'never')
            as detail
    from opportunities
    left join accounts
        on opportunities.account_id = accounts.account_id
    where not opportunities.is_closed
        and opportunities.close_date_push_count >= {{ min_pushes }}
        and coalesce(accounts.days_since_meaningful_touch > {{ window }}, true)
),

rules_start as (
    select min(as_of_date) as first_decision_date from book_decisions
),

owner_changes as (
    select account_history.*
    from account_history
    cross join rules_start
    where account_history.field_name = 'OwnerId'
        and account_history.changed_date >= rules_start.first_decision_date
),

unruled_owner_changes as (
    select
        'owner_change_outside_rules' as flag_kind,
        'account_history' as subject_type,
        owner_changes.account_history_id as subject_id,
        owner_changes.account_id,
        owner_changes.new_value as rep_id,
        cast(1 as {{ dbt.type_bigint() }}) as flag_count,
        'owner ' || coalesce(owner_changes.old_value, '?') || ' -> '
            || coalesce(owner_changes.new_value, '?') || ' on '
            || {{ dbt.cast('owner_changes.changed_date', dbt.type_string()) }}
            || ' by ' || coalesce(owner_changes.created_by_id, '?') as detail
    from owner_changes
    where not exists (
        select 1
        from book_decisions
        where book_decisions.account_id = owner_changes.account_id
            and book_decisions.to_owner_id = owner_changes.new_value
            and book_decisions.as_of_date <= owner_changes.changed_date
            and book_decisions.as_of_date
                >= {{ dbt.dateadd('day', '-' ~ lag_days, 'owner_changes.changed_date') }}
    )
),

big_books as (
    select
        'big_book_untouched' as flag_kind,
        'rep' as subject_type,
        rep_id as subject_id,
        cast(null as {{ dbt.type_string() }}) as account_id,
        rep_id,
        cast(stale_count as {{ dbt.type_bigint() }}) as flag_count,
        'book ' || {{ dbt.cast('book_size', dbt.type_string()) }} || ' > target '
            || {{ dbt.cast('target_size', dbt.type_string()) }} || ' with '
            || {{ dbt.cast('stale_count', dbt.type_string()) }} || ' stale accounts' as detail
    from reps
    where book_size > target_size
        and stale_count > 0
),

unioned as (
    select * from pushed_opportunities
    union all
    select * from unruled_owner_changes
    union all
    select * from big_books
),

final as (
    select
        {{ dbt.concat(['flag_kind', "':'", 'subject_id']) }} as hoarding_flag_id,
        flag_kind,
        subject_type,
        subject_id,
        account_id,
        rep_id,
        flag_count,
        detail,
        {{ as_of_date() }} as as_of_date,
        {{ mart_run_id() }} as run_id
    from unioned
)

select * from final
