{#- The Salesforce objects staged from raw_salesforce: (API name, raw table, version stamp).
    One list, so the deleted-record and quarantine counts cover the same objects as staging. -#}
{% macro salesforce_objects() -%}
    {{ return([
        ('User', 'user', 'system_modstamp'),
        ('Account', 'account', 'system_modstamp'),
        ('Contact', 'contact', 'system_modstamp'),
        ('Lead', 'lead', 'system_modstamp'),
        ('Opportunity', 'opportunity', 'system_modstamp'),
        ('Task', 'task', 'system_modstamp'),
        ('Event', 'event', 'system_modstamp'),
        ('Signal__c', 'signal_c', 'system_modstamp'),
        ('AccountHistory', 'account_history', 'created_date'),
    ]) }}
{%- endmacro %}

{#- Predicate for a staging model's where clause: the record has an id and the latest data-contract
    run did not quarantine it (contracts/store.py keeps ops.quarantined_ids). Excluded rows are
    counted per object in stg_salesforce__quarantine_counts, never dropped silently. An
    uncorrelated `not in` (the view never holds a null record_id; re-checked here) keeps the
    staging select single-table. -#}
{% macro is_not_quarantined(object_name, id_column='id') -%}
    {{ id_column }} is not null
    and {{ id_column }} not in (
        select quarantined.record_id
        from {{ source('ops', 'quarantined_ids') }} as quarantined
        where
            quarantined.object = '{{ object_name }}'
            and quarantined.record_id is not null
    )
{%- endmacro %}

{#- The body of an activity base model (Task, Event): the latest version of every record,
    deleted ones included, renamed to one shape; incremental-aware (`ids_loaded_since_last_build`).
    Events have no Status: `status_column` none gives a null task_status.
    An incremental run also keeps the account and load of the version a new one replaced
    (previous_account_id, previous_raw_load_id): raw is merged on id, so this is the only trace
    of an activity moved to another account, which the incremental account touches recompute. -#}
{% macro activity_versions(raw_relation, id_name, status_column=none) -%}
with

source as (
    {{ latest_versions(raw_relation, keep_ids=ids_loaded_since_last_build(raw_relation)) }}
),

renamed as (
    select
        cast(id as {{ dbt.type_string() }}) as {{ id_name }},
        coalesce(account_id, what_id) as account_id,
        owner_id,
        who_id as contact_id,
        subject,
        type as activity_type,
        coalesce(activity_date, cast(created_date as date)) as activity_date,
        {{ status_column or 'cast(null as ' ~ dbt.type_string() ~ ')' }} as task_status,
        coalesce(is_archived, false) as is_archived,
        direction_c as direction,
        coalesce(is_automated_c, false) as is_automated,
        source_c as activity_source,
        created_date as created_at,
        system_modstamp as modified_at,
        is_deleted,
        _dlt_load_id as raw_load_id
    from source
    where id is not null
),
{% if is_incremental() %}
replaced as (
    select
        {{ id_name }},
        account_id,
        raw_load_id
    from {{ this }}
    where {{ id_name }} in (select renamed.{{ id_name }} from renamed)
),

final as (
    select
        renamed.*,
        replaced.account_id as previous_account_id,
        replaced.raw_load_id as previous_raw_load_id
    from renamed
    left join replaced
        on renamed.{{ id_name }} = replaced.{{ id_name }}
)
{% else %}
final as (
    select
        renamed.*,
        cast(null as {{ dbt.type_string() }}) as previous_account_id,
        cast(null as {{ dbt.type_string() }}) as previous_raw_load_id
    from renamed
)
{% endif %}
select * from final
{%- endmacro %}

{#- The body of an activity staging view: the live, not quarantined rows of its base model,
    without the version bookkeeping columns. -#}
{% macro live_activities(base_relation, object_name, id_name) -%}
with

versions as (
    select * from {{ base_relation }}
),

live as (
    select
        {{ id_name }},
        account_id,
        owner_id,
        contact_id,
        subject,
        activity_type,
        activity_date,
        task_status,
        is_archived,
        direction,
        is_automated,
        activity_source,
        created_at,
        modified_at
    from versions
    where
        not is_deleted
        and {{ is_not_quarantined(object_name, id_name) }}
)

select * from live
{%- endmacro %}
