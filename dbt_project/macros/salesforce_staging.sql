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
