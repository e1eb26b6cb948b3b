{#- Each eligible rep's open slots per slot kind after steps 1-2 (returns, releases and
    retrievals free slots in the same run; the book before and after them is counted from the
    accounts and split by the one capacity model, so the open slots of both kinds add up to
    max(target - book, 0)), its new-account budget, and its place in this run's rotation. The
    rotation orders a segment's eligible reps by rep_id and starts at index (run index mod n),
    so n consecutive runs give every rep the first pick once. -#}
with

moved_to_pool as (
    select * from {{ ref('dec_moved_to_pool') }}
),

reps as (
    select * from {{ ref('int_reps_capacity') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

accounts as (
    select * from {{ ref('int_accounts_classified') }}
),

{#- A re-run of the same as-of date is the same run: accounts an earlier attempt gave a rep
    (recorded in the append-only history) use up that rep's new-account budget, so a re-run never
    hands out a second `max_new_per_run`; but only those the rep holds now, as read this run: a
    gift the killed attempt never wrote to the CRM is decided again, not counted. The history is
    read as a relation, not a ref, because book_decisions is built from this model. -#}
{%- set history = adapter.get_relation(
    database=target.database, schema='decisions', identifier='book_decisions'
) %}

already_given as (
    {%- if history is not none %}
    select
        history.to_owner_id as rep_id,
        count(distinct history.account_id) as given_count
    from {{ history }} as history
    inner join accounts
        on
            history.account_id = accounts.account_id
            and history.to_owner_id = accounts.owner_id
    where
        history.as_of_date = (select as_of_date from run_context)
        and history.decision_kind in ('distribute', 'signal_route')
    group by history.to_owner_id
    {%- else %}
    select
        rep_id,
        cast(0 as {{ dbt.type_bigint() }}) as given_count
    from reps
    where 1 = 0
    {%- endif %}
),

books as (
    select
        owner_id as rep_id,
        count(*) as owned_before,
        sum(case when is_in_market then 1 else 0 end) as in_market_before,
        sum(case when account_id not in (select moved_to_pool.account_id from moved_to_pool)
            then 1 else 0 end) as owned_after,
        sum(case when is_in_market
            and account_id not in (select moved_to_pool.account_id from moved_to_pool)
            then 1 else 0 end) as in_market_after
    from accounts
    where state in ('working', 'stale')
    group by owner_id
),

targets as (
    select
        reps.rep_id,
        max(case when reps.slot_kind = 'fit' then reps.capacity else 0 end) as fit_capacity,
        max(case when reps.slot_kind = 'intent' then reps.capacity else 0 end) as intent_capacity,
        coalesce(max(books.owned_before), 0) as owned_before,
        coalesce(max(books.in_market_before), 0) as in_market_before,
        coalesce(max(books.owned_after), 0) as owned_after,
        coalesce(max(books.in_market_after), 0) as in_market_after
    from reps
    left join books
        on reps.rep_id = books.rep_id
    group by reps.rep_id
),

counts_after as (
    select
        reps.rep_id,
        reps.slot_kind,
        {%- for phase in ['before', 'after'] %}
        {{ capacity_slot_count(
            'reps.slot_kind', 'targets.owned_' ~ phase, 'targets.in_market_' ~ phase,
            'targets.fit_capacity', 'targets.intent_capacity') }} as count_{{ phase }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from reps
    inner join targets
        on reps.rep_id = targets.rep_id
),

eligible_reps as (
    select
        rep_id,
        segment_key,
        row_number() over (partition by segment_key order by rep_id) - 1 as rep_ordinal,
        count(*) over (partition by segment_key) as segment_rep_count
    from (
        select distinct
            rep_id,
            segment_key
        from reps
        where is_eligible and segment_key is not null
    ) as distinct_reps
),

run_index_context as (
    select {{ decisions_run_index('as_of_date') }} as run_index
    from run_context
),

rotated as (
    select
        eligible_reps.*,
        run_context.run_index,
        {{ decisions_mod(
            'eligible_reps.rep_ordinal - run_context.run_index', 'eligible_reps.segment_rep_count'
        ) }} as rotation_position
    from eligible_reps
    cross join run_index_context as run_context
),

final as (
    select
        reps.rep_id,
        reps.slot_kind,
        reps.segment_key,
        reps.capacity,
        counts_after.count_before as current_count,
        counts_after.count_before - counts_after.count_after as freed_count,
        counts_after.count_after as current_count_after,
        greatest(reps.capacity - counts_after.count_after, 0) as open_slots,
        case
            when reps.max_new_per_run - coalesce(already_given.given_count, 0) > 0
                then reps.max_new_per_run - coalesce(already_given.given_count, 0)
            else 0
        end as max_new_per_run,
        rotated.run_index,
        rotated.rotation_position,
        rotated.segment_rep_count
    from reps
    inner join rotated
        on reps.rep_id = rotated.rep_id
    inner join counts_after
        on reps.rep_id = counts_after.rep_id and reps.slot_kind = counts_after.slot_kind
    left join already_given
        on reps.rep_id = already_given.rep_id
    where reps.is_eligible
)

select * from final
