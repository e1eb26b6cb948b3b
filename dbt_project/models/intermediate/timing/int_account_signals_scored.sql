{#- One row per timing signal inside its window for the as-of date (R4), with its decayed
    score: weight * 0.5 ^ (age_days / half_life_days). Sources: Signal__c rows (types as in the
    policy; a type with a threshold counts only when Score__c is above it, e.g.
    marketing_score), matched inbound leads (lead created date), intent surges from the intent
    files (domain -> account), competitor renewal dates (counts from window_days BEFORE the
    renewal; age = days until the renewal), get-back-to-me dates (a signal ON that date).
    Signals dated after the as-of date do not count yet (except renewals, which look ahead). -#}
with

accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

signals as (
    select * from {{ ref('stg_salesforce__signals') }}
),

leads_matched as (
    select * from {{ ref('int_leads_matched') }}
),

leads as (
    select * from {{ ref('stg_salesforce__leads') }}
),

intent_surges as (
    select * from {{ ref('stg_files__intent_surges') }}
),

web_domains as (
    select * from {{ ref('int_web_domains_mapped') }}
),

signal_config as (
    {{ policy_signal_config_rows() }}
),

events as (
    select
        {{ dbt.concat(["'signal:'", 'signal_id']) }} as signal_event_id,
        account_id,
        signal_type,
        signal_date,
        signal_score,
        'salesforce_signal' as origin
    from signals
    where account_id is not null

    union all

    select
        {{ dbt.concat(["'lead:'", 'leads.lead_id']) }} as signal_event_id,
        leads_matched.matched_account_id as account_id,
        'inbound_lead' as signal_type,
        leads.created_date as signal_date,
        cast(null as {{ dbt.type_float() }}) as signal_score,
        'lead_match' as origin
    from leads_matched
    inner join leads
        on leads_matched.lead_id = leads.lead_id
    where leads_matched.match_status = 'matched'

    union all

    select
        {{ dbt.concat(["'intent:'", 'intent_surges.intent_surge_id']) }} as signal_event_id,
        web_domains.account_id,
        'intent_surge' as signal_type,
        intent_surges.week_start_date as signal_date,
        intent_surges.intent_score as signal_score,
        'intent_file' as origin
    from intent_surges
    inner join web_domains
        on intent_surges.web_domain = web_domains.web_domain
    where web_domains.account_id is not null

    union all

    select
        {{ dbt.concat(["'get_back:'", 'account_id']) }} as signal_event_id,
        account_id,
        'get_back_to_me' as signal_type,
        get_back_date as signal_date,
        cast(null as {{ dbt.type_float() }}) as signal_score,
        'account_field' as origin
    from accounts
    where get_back_date is not null
),

renewals as (
    select
        {{ dbt.concat(["'renewal:'", 'account_id']) }} as signal_event_id,
        account_id,
        'competitor_renewal' as signal_type,
        competitor_renewal_date as signal_date,
        cast(null as {{ dbt.type_float() }}) as signal_score,
        'account_field' as origin,
        {{ dbt.datediff(as_of_date(), 'competitor_renewal_date', 'day') }} as age_days
    from accounts
    where competitor_renewal_date is not null
),

aged as (
    select
        events.*,
        {{ dbt.datediff('events.signal_date', as_of_date(), 'day') }} as age_days
    from events
    where events.signal_type <> 'competitor_renewal'
    union all
    select * from renewals
),

scored as (
    select
        aged.signal_event_id,
        aged.account_id,
        aged.signal_type,
        aged.signal_date,
        aged.origin,
        aged.signal_score,
        aged.age_days,
        signal_config.weight,
        signal_config.half_life_days,
        signal_config.window_days,
        signal_config.weight
            * {{ half_power('1.0 * aged.age_days / signal_config.half_life_days') }}
            as decayed_score
    from aged
    inner join signal_config
        on aged.signal_type = signal_config.signal_type
    inner join accounts
        on aged.account_id = accounts.account_id
    where aged.age_days >= 0
        and aged.age_days <= signal_config.window_days
        and (signal_config.threshold is null or aged.signal_score > signal_config.threshold)
)

select * from scored
