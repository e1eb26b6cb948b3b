{#- Public (R12): the coverage / TAM audit. Grain: one row per segment_key (accounts without a
    segment as 'unsegmented') plus one row 'all' for the whole CRM.
      TAM   = every live account in the CRM (the market loaded into it; fit tiers say how good).
      NBTAM = TAM accounts open to new business: not a customer (Type = Customer) and not
              excluded (owned by a non-book or inactive user).
      engaged_Nd = NBTAM accounts with a meaningful touch in the last N days (as-of = day 0).
      supply = ready + resting accounts; demand = open slots of eligible reps.
      months_of_coverage = supply / monthly intake, monthly intake = capacity of eligible reps
              * (365 / 12) / working_window_days (every book turns over once per window),
              computed as supply * window * 12 / (capacity * 365).
      work_cycles_per_year_cap = 365 / (working_window_days + rest_days.retrieved): an account
              cannot be worked more often than this in a year. -#}
{%- set window = policy_number('lifecycle.working_window_days') -%}
{%- set rest = policy_number('lifecycle.rest_days.retrieved') -%}
with

accounts as (
    select * from {{ ref('accounts') }}
),

reps as (
    select * from {{ ref('reps') }}
),

account_facts as (
    select
        coalesce(segment_key, 'unsegmented') as segment_key,
        state,
        owner_kind,
        is_customer,
        not is_customer and state <> 'excluded' as is_nbtam,
        touches_30d,
        touches_60d,
        touches_90d,
        coalesce(days_since_meaningful_touch >= 365, true) as is_unworked_365d
    from accounts
),

account_rows as (
    select * from account_facts
    union all
    select
        'all' as segment_key,
        state,
        owner_kind,
        is_customer,
        is_nbtam,
        touches_30d,
        touches_60d,
        touches_90d,
        is_unworked_365d
    from account_facts
),

rep_facts as (
    select
        coalesce(segment_key, 'unsegmented') as segment_key,
        is_eligible,
        capacity,
        open_slots
    from reps
),

rep_rows as (
    select * from rep_facts
    union all
    select
        'all' as segment_key,
        is_eligible,
        capacity,
        open_slots
    from rep_facts
),

account_metrics as (
    select
        segment_key,
        count(*) as tam_accounts,
        count(case when is_customer then 1 end) as customer_accounts,
        count(case when state = 'excluded' then 1 end) as excluded_accounts,
        count(case when state = 'retired' then 1 end) as retired_accounts,
        count(case when state = 'converted' then 1 end) as converted_accounts,
        count(case when is_nbtam then 1 end) as nbtam_accounts,
        count(case when is_nbtam and owner_kind = 'rep' then 1 end) as nbtam_rep_owned,
        count(case when is_nbtam and owner_kind = 'pool' then 1 end) as nbtam_in_pool,
        {%- for days in [30, 60, 90] %}
        count(case when is_nbtam and touches_{{ days }}d > 0 then 1 end)
            as nbtam_engaged_{{ days }}d,
        {%- endfor %}
        count(case when is_nbtam and owner_kind = 'rep' and touches_30d > 0 then 1 end)
            as nbtam_rep_owned_engaged_30d,
        count(case when is_nbtam and owner_kind <> 'rep' then 1 end) as nbtam_unassigned,
        count(case when is_nbtam and is_unworked_365d then 1 end) as nbtam_unworked_365d,
        count(case when is_nbtam and (owner_kind <> 'rep' or is_unworked_365d) then 1 end)
            as nbtam_unassigned_or_unworked_365d,
        count(case when state = 'ready' then 1 end) as ready_accounts,
        count(case when state = 'resting' then 1 end) as resting_accounts,
        count(case when state in ('working', 'stale') then 1 end) as in_book_accounts
    from account_rows
    group by segment_key
),

rep_metrics as (
    select
        segment_key,
        count(*) as book_reps,
        count(case when is_eligible then 1 end) as eligible_reps,
        cast(sum(case when is_eligible then capacity else 0 end) as {{ dbt.type_bigint() }})
            as eligible_capacity,
        cast(sum(case when is_eligible then open_slots else 0 end) as {{ dbt.type_bigint() }})
            as open_slots_demand
    from rep_rows
    group by segment_key
),

segments as (
    select segment_key from account_metrics
    union
    select segment_key from rep_metrics
),

joined as (
    select
        segments.segment_key,
        {%- for column in [
            'tam_accounts', 'customer_accounts', 'excluded_accounts', 'retired_accounts',
            'converted_accounts', 'nbtam_accounts', 'nbtam_rep_owned', 'nbtam_in_pool',
            'nbtam_engaged_30d', 'nbtam_engaged_60d', 'nbtam_engaged_90d',
            'nbtam_rep_owned_engaged_30d', 'nbtam_unassigned', 'nbtam_unworked_365d',
            'nbtam_unassigned_or_unworked_365d', 'ready_accounts', 'resting_accounts',
            'in_book_accounts'] %}
        coalesce(account_metrics.{{ column }}, 0) as {{ column }},
        {%- endfor %}
        coalesce(rep_metrics.book_reps, 0) as book_reps,
        coalesce(rep_metrics.eligible_reps, 0) as eligible_reps,
        coalesce(rep_metrics.eligible_capacity, 0) as eligible_capacity,
        coalesce(rep_metrics.open_slots_demand, 0) as open_slots_demand
    from segments
    left join account_metrics
        on segments.segment_key = account_metrics.segment_key
    left join rep_metrics
        on segments.segment_key = rep_metrics.segment_key
),

final as (
    select
        segment_key,
        segment_key = 'all' as is_total,
        tam_accounts,
        customer_accounts,
        excluded_accounts,
        retired_accounts,
        converted_accounts,
        nbtam_accounts,
        nbtam_rep_owned,
        nbtam_in_pool,
        nbtam_engaged_30d,
        nbtam_engaged_60d,
        nbtam_engaged_90d,
        {{ safe_ratio('nbtam_engaged_30d', 'nbtam_accounts') }} as nbtam_engaged_30d_share,
        nbtam_rep_owned_engaged_30d,
        nbtam_unassigned,
        nbtam_unworked_365d,
        nbtam_unassigned_or_unworked_365d,
        ready_accounts,
        resting_accounts,
        ready_accounts + resting_accounts as supply_accounts,
        in_book_accounts,
        book_reps,
        eligible_reps,
        eligible_capacity,
        open_slots_demand,
        ready_accounts + resting_accounts - open_slots_demand as supply_minus_demand,
        ready_accounts + resting_accounts >= open_slots_demand as is_supply_sufficient,
        {{ safe_ratio('(ready_accounts + resting_accounts) * ' ~ window ~ ' * 12',
                      'eligible_capacity * 365') }} as months_of_coverage,
        {{ window }} as working_window_days,
        {{ rest }} as rest_days,
        365.0 / ({{ window }} + {{ rest }}) as work_cycles_per_year_cap,
        {{ as_of_date() }} as as_of_date,
        {{ mart_run_id() }} as run_id
    from joined
)

select * from final
