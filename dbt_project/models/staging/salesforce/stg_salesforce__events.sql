{#- Live Events: the latest versions in base_salesforce__events without deletes and without the
    ids the latest data-contract run quarantined. A view: the filter is cheap, the history is
    materialised once, in the base model. -#}
{{ live_activities(ref('base_salesforce__events'), 'Event', 'event_id') }}
