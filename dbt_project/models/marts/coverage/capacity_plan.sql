{#- Public (R16): capacity plan. Grain: one row per segment_key plus 'all' (as coverage_audit).
    policy.planning.quota is a yearly quota per rep:
      deals = quota / average_deal_size; qualified meetings = deals / close_rate;
      accounts needed = meetings / qualification_rate (accounts to work per rep per year).
    Demand = accounts needed * eligible reps. Two supplies meet it:
      book throughput = eligible capacity * 365 / working_window_days (account-works the books
        allow in a year);
      market throughput = workable accounts (ready + resting + in books) * the work-cycle cap
        365 / (working_window_days + rest_days.retrieved).
    The plan is viable when demand fits under both. -#}
{%- set window = policy_number('lifecycle.working_window_days') -%}
{%- set quota = policy_number('planning.quota') -%}
{%- set deal_size = policy_number('planning.average_deal_size') -%}
{%- set close_rate = policy_number('planning.close_rate') -%}
{%- set qualification_rate = policy_number('planning.qualification_rate') -%}
with

coverage as (
    select * from {{ ref('coverage_audit') }}
),

per_rep as (
    select
        cast({{ quota }} as {{ dbt.type_float() }}) as quota_per_rep,
        {{ quota }} * 1.0 / {{ deal_size }} as deals_needed_per_rep,
        {{ quota }} * 1.0 / {{ deal_size }} / {{ close_rate }} as meetings_needed_per_rep,
        {{ quota }} * 1.0 / {{ deal_size }} / {{ close_rate }} / {{ qualification_rate }}
            as accounts_needed_per_rep
),

planned as (
    select
        coverage.segment_key,
        coverage.is_total,
        coverage.eligible_reps,
        per_rep.quota_per_rep,
        per_rep.deals_needed_per_rep,
        per_rep.meetings_needed_per_rep,
        per_rep.accounts_needed_per_rep,
        per_rep.accounts_needed_per_rep * coverage.eligible_reps as accounts_needed_per_year,
        coverage.eligible_capacity,
        coverage.eligible_capacity * 365.0 / {{ window }} as book_throughput_per_year,
        coverage.ready_accounts + coverage.resting_accounts + coverage.in_book_accounts
            as workable_accounts,
        coverage.work_cycles_per_year_cap,
        (coverage.ready_accounts + coverage.resting_accounts + coverage.in_book_accounts)
            * coverage.work_cycles_per_year_cap as market_throughput_per_year,
        coverage.supply_accounts,
        coverage.open_slots_demand,
        coverage.months_of_coverage,
        coverage.as_of_date,
        coverage.run_id
    from coverage
    cross join per_rep
),

final as (
    select
        segment_key,
        is_total,
        eligible_reps,
        quota_per_rep,
        deals_needed_per_rep,
        meetings_needed_per_rep,
        accounts_needed_per_rep,
        accounts_needed_per_year,
        eligible_capacity,
        book_throughput_per_year,
        workable_accounts,
        work_cycles_per_year_cap,
        market_throughput_per_year,
        accounts_needed_per_year - book_throughput_per_year as book_capacity_gap,
        accounts_needed_per_year - market_throughput_per_year as market_supply_gap,
        accounts_needed_per_year <= book_throughput_per_year
            and accounts_needed_per_year <= market_throughput_per_year as is_plan_viable,
        supply_accounts,
        open_slots_demand,
        months_of_coverage,
        as_of_date,
        run_id
    from planned
)

select * from final
