{#- The latest version of every Account, deleted ones included (is_deleted), typed, renamed and
    with its matching keys (web_domain, company_key) computed once per version: incremental like
    base_salesforce__tasks, so a daily run ranks and normalises only the accounts a load touched
    (1% of a million), not all of them. stg_salesforce__accounts filters out deletes and
    quarantined ids. -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='account_id') }}
{%- set raw_accounts = source('salesforce', 'account') %}
with

source as (
    {{ latest_versions(raw_accounts, keep_ids=ids_loaded_since_last_build(raw_accounts)) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as account_id,
        owner_id,
        name as account_name,
        website,
        {{ normalize_domain('website') }} as web_domain,
        {{ normalize_company_name('name') }} as company_key,
        industry,
        cast(number_of_employees as {{ dbt.type_bigint() }}) as employee_count,
        cast(annual_revenue as {{ dbt.type_float() }}) as annual_revenue,
        billing_country,
        billing_state,
        nullif(parent_id, '') as parent_account_id,
        type as account_type,
        book_status_c as book_status,
        last_touch_date_c as crm_last_touch_date,
        distribution_date_c as distribution_date,
        distribution_reason_c as distribution_reason,
        return_date_c as return_date,
        return_reason_c as return_reason,
        rest_until_c as rest_until_date,
        return_requested_c as pending_return_reason,
        return_requested_by_c as return_requested_by_id,
        get_back_date_c as get_back_date,
        competitor_renewal_date_c as competitor_renewal_date,
        cast(external_fit_score_c as {{ dbt.type_float() }}) as external_fit_score,
        created_date as created_at,
        system_modstamp as modified_at,
        is_deleted,
        _dlt_load_id as raw_load_id
    from source
    where id is not null
)

select * from renamed
