{#- Public (R13, R20): balance of books across eligible reps. Grain: one row per segment_key
    plus 'all' (every eligible rep together). Gini coefficient (macro gini_coefficient, sorted
    rank formula) of book size (working + stale accounts), of book value by priority (sum of
    priority_score) and by fit (sum of fit_score): 0 = equal books, (n-1)/n = one rep holds
    everything. -#}
with

reps as (
    select * from {{ ref('reps') }}
),

eligible as (
    select
        coalesce(segment_key, 'unsegmented') as segment_key,
        rep_id,
        book_size,
        book_value_priority,
        book_value_fit
    from reps
    where is_eligible
),

grouped as (
    select * from eligible
    union all
    select
        'all' as segment_key,
        rep_id,
        book_size,
        book_value_priority,
        book_value_fit
    from eligible
),

ranked as (
    select
        *,
        row_number() over (partition by segment_key order by book_size, rep_id) as size_rank,
        row_number() over (partition by segment_key order by book_value_priority, rep_id)
            as priority_rank,
        row_number() over (partition by segment_key order by book_value_fit, rep_id) as fit_rank
    from grouped
),

final as (
    select
        segment_key,
        segment_key = 'all' as is_total,
        count(*) as eligible_reps,
        sum(book_size) as total_book_size,
        min(book_size) as min_book_size,
        max(book_size) as max_book_size,
        avg(book_size * 1.0) as avg_book_size,
        {{ gini_coefficient('book_size', 'size_rank') }} as gini_book_size,
        {{ gini_coefficient('book_value_priority', 'priority_rank') }} as gini_book_value_priority,
        {{ gini_coefficient('book_value_fit', 'fit_rank') }} as gini_book_value_fit,
        {{ as_of_date() }} as as_of_date,
        {{ mart_run_id() }} as run_id
    from ranked
    group by segment_key
)

select * from final
