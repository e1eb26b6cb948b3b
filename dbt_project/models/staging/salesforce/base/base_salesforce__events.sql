{#- The latest version of every Event, deleted ones included (is_deleted), renamed; incremental
    for the same reason as base_salesforce__tasks. Events have no status. -#}
{{ config(**upsert_by_key('event_id')) }}
{{ activity_versions(source('salesforce', 'event'), 'event_id') }}
