{#- The latest version of every Task, deleted ones included (is_deleted), renamed: the 20M-row
    activity history is rebuilt only for the ids a load touched (incremental), not rewritten
    every run. stg_salesforce__tasks filters out deletes and quarantined ids. -#}
{{ config(**upsert_by_key('task_id')) }}
{{ activity_versions(source('salesforce', 'task'), 'task_id', status_column='status') }}
