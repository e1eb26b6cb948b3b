{#- A table, unlike the other staging models: a dozen models read it, and as a view each read
    re-ranked the versions and re-normalised 1M web domains (about 10 s per L build). -#}
{{ config(materialized='table') }}

with

source as (
    {{ latest_versions(source('salesforce', 'account')) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as account_id,
        owner_id,
        name as account_name,
        website,
        {{ normalize_domain('website') }} as web_domain,
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
        system_modstamp as modified_at
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('Account') }}
)

select * from renamed
