-- R3: anyone can see why an account has its fit score - its components add up to it.
with

components as (
    select
        account_id,
        sum(score_contribution) as component_total
    from {{ ref('int_account_fit_components') }}
    group by account_id
),

scores as (
    select * from {{ ref('int_accounts_fit_scored') }}
),

mismatched as (
    select
        scores.account_id,
        scores.fit_score,
        coalesce(components.component_total, 0) as component_total
    from scores
    left join components
        on scores.account_id = components.account_id
    where abs(scores.fit_score - coalesce(components.component_total, 0)) > 0.0001
)

select * from mismatched
