{#- What kind of owner each user is: a book rep, a pool user, a non-book user or an inactive
    rep. Pool users are named in policy.crm.pool_users (username or e-mail) or have role Pool. -#}
{%- set book_roles = policy_book_roles() -%}
{%- set non_book_roles = policy_get('books.non_book_roles') -%}
with

users as (
    select * from {{ ref('stg_salesforce__users') }}
),

classified as (
    select
        user_id,
        user_name,
        username,
        email,
        book_role,
        is_active,
        manager_id,
        segment_key,
        has_multiple_segments,
        ramp_start_date,
        out_of_office_until_date,
        case
            when book_role = 'Pool'
                or lower(username) in ({{ policy_string_list('crm.pool_users') | lower }})
                or email in ({{ policy_string_list('crm.pool_users') | lower }})
                then 'pool'
            {%- if book_roles %}
            when book_role in ({% for role in book_roles %}{{ sql_string_literal(role) }}{% if not loop.last %}, {% endif %}{% endfor %})
                and not is_active then 'inactive'
            when book_role in ({% for role in book_roles %}{{ sql_string_literal(role) }}{% if not loop.last %}, {% endif %}{% endfor %})
                then 'rep'
            {%- endif %}
            else 'non_book'
        end as owner_kind
    from users
)

select * from classified
