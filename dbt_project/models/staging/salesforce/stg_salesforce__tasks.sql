{#- Live Tasks: the latest versions in base_salesforce__tasks without deletes and without the
    ids the latest data-contract run quarantined. A view: the filter is cheap, the history is
    materialised once, in the base model. -#}
{{ live_activities(ref('base_salesforce__tasks'), 'Task', 'task_id') }}
