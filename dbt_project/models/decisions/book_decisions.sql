{#- The audit trail of every decision (R15): one row per decision (decision_id), appended from
    dec_run_decisions. decision_id identifies what was decided: run, account, kind, lead, from
    and to owner, to state, reason and rest date. A re-run of the same run_id appends only the
    decisions it makes differently (a killed run's re-run may decide again on a CRM its first
    attempt partly changed); rows already recorded are never rewritten. What became of each
    decision in the CRM is in book_decision_outcomes. A dry run appends nothing, so it cannot use
    up a rep's budget for the real run of the same date. New columns are added to an existing
    table (on_schema_change). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns'
) }}
{%- set identity = [
    'run_id', 'account_id', 'decision_kind', 'lead_id', 'from_owner_id', 'to_owner_id',
    'to_state', 'reason', 'rest_until_date'
] -%}
{%- set identity_parts = [] -%}
{%- for column in identity -%}
    {%- do identity_parts.append(
        "coalesce(cast(run_decisions." ~ column ~ " as " ~ dbt.type_string() ~ "), '~')"
    ) -%}
    {%- if not loop.last %}{% do identity_parts.append("'|'") %}{% endif -%}
{%- endfor %}
with

run_decisions as (
    select * from {{ ref('dec_run_decisions') }}
),

identified as (
    select
        run_decisions.*,
        {{ dbt.hash(dbt.concat(identity_parts)) }}
            as decision_id
    from run_decisions
),

final as (
    select identified.*
    from identified
    where not {{ is_dry_run() }}
    {%- if is_incremental() %}
        and not exists (
            select 1
            from {{ this }} as recorded
            where recorded.decision_id = identified.decision_id
        )
    {%- endif %}
)

select * from final
