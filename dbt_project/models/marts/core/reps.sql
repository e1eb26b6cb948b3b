{#- Public: one row per book rep (a user with a book role of the policy, active or not) - role,
    segment, eligibility with its reason, capacity after ramp and out-of-office per slot kind,
    open slots and target size when the run started, and the book by account state as it
    stands after this run's confirmed decisions (accounts), with the book the run started from
    beside it (book_size_before). book_size counts working + stale accounts (what uses
    capacity); converted and other owned accounts are shown but do not use capacity.
    A view, like accounts: it shows the books after the write-back once it has run. -#}
{{ config(materialized='view') }}
{%- set states = ['ready', 'resting', 'review', 'retired', 'working', 'stale', 'converted', 'excluded'] -%}
{%- set book_roles = policy_book_roles() -%}
{%- set books = policy_get('books') -%}
with

rep_slots as (
    select * from {{ ref('int_reps_capacity') }}
),

users as (
    select * from {{ ref('int_users_classified') }}
),

accounts as (
    select * from {{ ref('accounts') }}
),

accounts_before as (
    select * from {{ ref('int_accounts_classified') }}
),

role_targets as (
    {%- for role in book_roles %}
    select
        {{ sql_string_literal(role) }} as role,
        {{ sql_number(books[role].get('target_size', 0), 'books.' ~ role ~ '.target_size') }}
            as target_size
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    {%- if not book_roles %}
    select cast(null as {{ dbt.type_string() }}) as role, 0 as target_size where 1 = 0
    {%- endif %}
),

rep_capacity as (
    select
        rep_id,
        max(rep_name) as rep_name,
        max(role) as role,
        max(segment_key) as segment_key,
        max(case when is_eligible then 1 else 0 end) = 1 as is_eligible,
        max(ineligible_reason) as ineligible_reason,
        {%- for kind in ['fit', 'intent'] %}
        sum(case when slot_kind = '{{ kind }}' then capacity else 0 end) as capacity_{{ kind }},
        sum(case when slot_kind = '{{ kind }}' then current_count else 0 end)
            as current_count_{{ kind }},
        sum(case when slot_kind = '{{ kind }}' then open_slots else 0 end)
            as open_slots_{{ kind }},
        {%- endfor %}
        sum(capacity) as capacity,
        sum(open_slots) as open_slots,
        max(max_new_per_run) as max_new_per_run
    from rep_slots
    group by rep_id
),

books as (
    select
        owner_id,
        {%- for state in states %}
        sum(case when state = '{{ state }}' then 1 else 0 end) as {{ state }}_count,
        {%- endfor %}
        {{ exact_sum("case when state in ('working', 'stale') then priority_score else 0 end") }}
            as book_value_priority,
        {{ exact_sum("case when state in ('working', 'stale') then fit_score else 0 end") }}
            as book_value_fit,
        sum(case when state in ('working', 'stale') and is_in_market then 1 else 0 end)
            as in_market_count,
        count(*) as owned_count
    from accounts
    group by owner_id
),

books_before as (
    select
        owner_id,
        sum(case when state in ('working', 'stale') then 1 else 0 end) as book_size_before
    from accounts_before
    group by owner_id
),

final as (
    select
        rep_capacity.rep_id,
        rep_capacity.rep_name,
        users.email,
        rep_capacity.role,
        rep_capacity.segment_key,
        users.has_multiple_segments,
        users.is_active,
        users.ramp_start_date,
        users.out_of_office_until_date,
        rep_capacity.is_eligible,
        rep_capacity.ineligible_reason,
        role_targets.target_size,
        rep_capacity.capacity,
        rep_capacity.capacity_fit,
        rep_capacity.capacity_intent,
        rep_capacity.current_count_fit,
        rep_capacity.current_count_intent,
        rep_capacity.open_slots,
        rep_capacity.open_slots_fit,
        rep_capacity.open_slots_intent,
        rep_capacity.max_new_per_run,
        coalesce(books.working_count, 0) + coalesce(books.stale_count, 0) as book_size,
        coalesce(books_before.book_size_before, 0) as book_size_before,
        {%- for state in states %}
        coalesce(books.{{ state }}_count, 0) as {{ state }}_count,
        {%- endfor %}
        coalesce(books.owned_count, 0) as owned_count,
        coalesce(books.in_market_count, 0) as in_market_count,
        coalesce(books.book_value_priority, 0) as book_value_priority,
        coalesce(books.book_value_fit, 0) as book_value_fit,
        {{ mart_run_id() }} as run_id
    from rep_capacity
    left join users
        on rep_capacity.rep_id = users.user_id
    left join role_targets
        on rep_capacity.role = role_targets.role
    left join books
        on rep_capacity.rep_id = books.owner_id
    left join books_before
        on rep_capacity.rep_id = books_before.owner_id
)

select * from final
