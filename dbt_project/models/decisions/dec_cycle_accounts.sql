{#- The accounts an out-of-cycle run is about (R7, R9, R17): in a 'signals' run the accounts of
    the run's Signal__c ids, in a 'returns' run the run's Account ids (ops.run_cycle_ids); empty
    in a 'full' run. The decision models decide only these accounts in those modes. -#}
with

cycle_ids as (
    select distinct cast(id as {{ dbt.type_string() }}) as cycle_id
    from {{ source('ops', 'run_cycle_ids') }}
),

signals as (
    select * from {{ ref('stg_salesforce__signals') }}
),

run_context as (
    select * from {{ ref('dec_run_context') }}
),

signal_accounts as (
    select distinct signals.account_id
    from cycle_ids
    inner join signals
        on cycle_ids.cycle_id = signals.signal_id
    cross join run_context
    where run_context.cycle_mode = 'signals' and signals.account_id is not null
),

returning_accounts as (
    select cycle_ids.cycle_id as account_id
    from cycle_ids
    cross join run_context
    where run_context.cycle_mode = 'returns'
),

final as (
    select account_id from signal_accounts
    union all
    select account_id from returning_accounts
)

select * from final
