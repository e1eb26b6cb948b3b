{#- One row per lead: the account it belongs to (R5), or why not. Methods, best first:
    converted (the CRM already converted it), domain (normalised web domain of Website, else of
    the e-mail, equals an account's), subdomain (the lead's domain is under an account's, up to
    3 labels deep), name_exact (normalised company names equal), name_prefix (one normalised
    name is the other plus more words). Only the best method with candidates counts: one
    account -> matched; several -> ambiguous with the candidates listed; none -> unmatched.
    Free-mail domains (seed free_mail_domains) never match by domain. -#}
{%- set methods = [
    ('converted', 1, 1.0), ('domain', 2, 1.0), ('subdomain', 3, 0.9),
    ('name_exact', 4, 0.8), ('name_prefix', 5, 0.6)] -%}
with recursive

leads as (
    select * from {{ ref('stg_salesforce__leads') }}
),

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

free_mail_domains as (
    select * from {{ ref('free_mail_domains') }}
),

lead_keys as (
    select
        lead_id,
        is_converted,
        converted_account_id,
        coalesce({{ normalize_domain('website') }}, {{ normalize_domain('email') }}) as lead_domain,
        {{ normalize_company_name('company_name') }} as lead_company_key
    from leads
),

lead_domains as (
    select
        lead_keys.*,
        free_mail_domains.web_domain is not null as is_free_mail_domain,
        case when free_mail_domains.web_domain is null then lead_keys.lead_domain end
            as matchable_domain
    from lead_keys
    left join free_mail_domains
        on lead_keys.lead_domain = free_mail_domains.web_domain
),

lead_parent_domains as (
    select
        lead_id,
        matchable_domain,
        {{ parent_domain('matchable_domain') }} as parent_domain_1
    from lead_domains
    where matchable_domain is not null
),

lead_parent_domains_deep as (
    select
        lead_id,
        parent_domain_1,
        {{ parent_domain('parent_domain_1') }} as parent_domain_2
    from lead_parent_domains
),

lead_suffixes as (
    select
        lead_id,
        parent_domain_1 as suffix_domain
    from lead_parent_domains_deep
    union all
    select
        lead_id,
        parent_domain_2 as suffix_domain
    from lead_parent_domains_deep
    union all
    select lead_id, {{ parent_domain('parent_domain_2') }} as suffix_domain
    from lead_parent_domains_deep
),

account_keys as (
    select
        accounts.account_id,
        case when free_mail_domains.web_domain is null then accounts.web_domain end
            as matchable_domain,
        {{ normalize_company_name('accounts.account_name') }} as account_company_key
    from accounts
    left join free_mail_domains
        on accounts.web_domain = free_mail_domains.web_domain
),

{# Every proper word-prefix of a normalised company name ('acme robotics eu' -> 'acme robotics',
    'acme'): keys are trimmed with single blanks, so `a` is `b` plus more words exactly when `a`
    is one of `b`'s word-prefixes. -#}
{{ word_prefix_cte('lead_name_prefixes', 'lead_domains', 'lead_id', 'lead_company_key') }},

{{ word_prefix_cte(
    'account_name_prefixes', 'account_keys', 'account_id', 'account_company_key'
) }},

candidates as (
    select
        lead_domains.lead_id,
        accounts.account_id,
        'converted' as match_method
    from lead_domains
    inner join accounts
        on lead_domains.converted_account_id = accounts.account_id
    where lead_domains.is_converted

    union all

    select
        lead_domains.lead_id,
        account_keys.account_id,
        'domain' as match_method
    from lead_domains
    inner join account_keys
        on lead_domains.matchable_domain = account_keys.matchable_domain

    union all

    select distinct
        lead_suffixes.lead_id,
        account_keys.account_id,
        'subdomain' as match_method
    from lead_suffixes
    inner join account_keys
        on lead_suffixes.suffix_domain = account_keys.matchable_domain
    where lead_suffixes.suffix_domain like '%.%'

    union all

    select
        lead_domains.lead_id,
        account_keys.account_id,
        'name_exact' as match_method
    from lead_domains
    inner join account_keys
        on lead_domains.lead_company_key = account_keys.account_company_key

    union all

    {#- name_prefix: one key is the other plus whole words. An equi-join on each proper
        word-prefix of the longer key (few per name) instead of a join on the first word, which
        pairs every lead with every account sharing it (billions of pairs at 1M accounts). #}
    select
        lead_domains.lead_id,
        account_name_prefixes.account_id,
        'name_prefix' as match_method
    from lead_domains
    inner join account_name_prefixes
        on lead_domains.lead_company_key = account_name_prefixes.name_prefix
    where {{ dbt.length(dbt.split_part('lead_domains.lead_company_key', "' '", 1)) }} >= 3

    union all

    select
        lead_name_prefixes.lead_id,
        account_keys.account_id,
        'name_prefix' as match_method
    from lead_name_prefixes
    inner join account_keys
        on lead_name_prefixes.name_prefix = account_keys.account_company_key
    where {{ dbt.length(dbt.split_part('lead_name_prefixes.name_prefix', "' '", 1)) }} >= 3
),

ranked_candidates as (
    select
        candidates.lead_id,
        candidates.account_id,
        candidates.match_method,
        case candidates.match_method
            {%- for name, rank, confidence in methods %}
            when '{{ name }}' then {{ rank }}
            {%- endfor %}
        end as method_rank,
        case candidates.match_method
            {%- for name, rank, confidence in methods %}
            when '{{ name }}' then {{ confidence }}
            {%- endfor %}
        end as method_confidence
    from candidates
),

best_rank as (
    select
        lead_id,
        min(method_rank) as method_rank
    from ranked_candidates
    group by lead_id
),

best_candidates as (
    select distinct
        ranked_candidates.lead_id,
        ranked_candidates.account_id,
        ranked_candidates.match_method,
        ranked_candidates.method_confidence
    from ranked_candidates
    inner join best_rank
        on ranked_candidates.lead_id = best_rank.lead_id
        and ranked_candidates.method_rank = best_rank.method_rank
),

candidate_summary as (
    select
        lead_id,
        min(match_method) as match_method,
        max(method_confidence) as method_confidence,
        count(*) as candidate_count,
        min(account_id) as first_account_id,
        {{ dbt.listagg('account_id', "';'", 'order by account_id') }} as candidate_account_ids
    from best_candidates
    group by lead_id
),

final as (
    select
        lead_domains.lead_id,
        lead_domains.lead_domain,
        lead_domains.is_free_mail_domain,
        case
            when candidate_summary.candidate_count = 1 then 'matched'
            when candidate_summary.candidate_count > 1 then 'ambiguous'
            else 'unmatched'
        end as match_status,
        candidate_summary.match_method,
        case
            when candidate_summary.candidate_count = 1 then candidate_summary.method_confidence
            when candidate_summary.candidate_count > 1
                then round(cast(candidate_summary.method_confidence / candidate_summary.candidate_count
                    as {{ dbt.type_numeric() }}), 2)
            else 0
        end as match_confidence,
        case when candidate_summary.candidate_count = 1 then candidate_summary.first_account_id end
            as matched_account_id,
        coalesce(candidate_summary.candidate_count, 0) as candidate_count,
        candidate_summary.candidate_account_ids
    from lead_domains
    left join candidate_summary
        on lead_domains.lead_id = candidate_summary.lead_id
)

select * from final
