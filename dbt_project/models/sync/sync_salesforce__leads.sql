{#- The Lead write-back payload (R7, R11): the desired Lead owner after this run's lead_route
    decisions, with the owner read this run (before_owner_id), ONLY for leads whose desired
    owner differs (`is distinct from`) from the CRM value. OwnerId is the only Lead field the
    product writes. Columns use the dlt snake_case of the field names (owner_id = OwnerId). -#}
with

lead_routes as (
    select * from {{ ref('dec_lead_routes') }}
),

crm_leads as (
    select * from {{ ref('stg_salesforce__leads') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

desired as (
    select
        crm_leads.lead_id,
        run_context.run_id,
        run_context.as_of_date,
        lead_routes.account_id,
        lead_routes.decision_kind as applied_decision_kind,
        crm_leads.owner_id as before_owner_id,
        lead_routes.to_owner_id as owner_id
    from lead_routes
    inner join crm_leads
        on lead_routes.lead_id = crm_leads.lead_id
    cross join run_context
    where lead_routes.run_id = run_context.run_id
),

final as (
    select *
    from desired
    where owner_id is distinct from before_owner_id
)

select * from final
