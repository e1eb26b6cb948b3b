with

source as (
    {{ latest_versions(source('salesforce', 'signal_c')) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as signal_id,
        account_c as account_id,
        owner_id,
        signal_type_c as signal_type,
        coalesce(signal_date_c, cast(created_date as date)) as signal_date,
        cast(score_c as {{ dbt.type_float() }}) as signal_score,
        topic_c as topic,
        detail_c as detail,
        created_date as created_at,
        system_modstamp as modified_at
    from source
    where
        not is_deleted
        and {{ is_not_quarantined('Signal__c') }}
)

select * from renamed
