{#- Public: the parts of every account's fit score (R3), one row per (account, fit rule hit).
    Contributions sum to accounts.fit_score. -#}
with

fit_components as (
    select * from {{ ref('int_account_fit_components') }}
),

final as (
    select
        fit_component_id,
        account_id,
        rule_name,
        rule_index,
        points,
        max_points,
        score_contribution,
        {{ mart_run_id() }} as run_id
    from fit_components
)

select * from final
