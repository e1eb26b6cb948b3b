{#- One row per account web domain: the account it identifies when exactly one account has it.
    Used to attach domain-keyed feeds (intent files, engagement exports) to accounts. -#}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

free_mail_domains as (
    select * from {{ ref('free_mail_domains') }}
),

domains as (
    select
        accounts.web_domain,
        min(accounts.account_id) as first_account_id,
        count(distinct accounts.account_id) as account_count
    from accounts
    left join free_mail_domains
        on accounts.web_domain = free_mail_domains.web_domain
    where accounts.web_domain is not null
        and free_mail_domains.web_domain is null
    group by accounts.web_domain
),

final as (
    select
        web_domain,
        case when account_count = 1 then first_account_id end as account_id,
        account_count,
        account_count > 1 as is_ambiguous
    from domains
)

select * from final
