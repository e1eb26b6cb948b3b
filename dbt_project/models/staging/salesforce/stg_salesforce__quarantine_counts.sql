{#- What the data-contract quarantine (and a missing Id) removes from each salesforce staging
    model, one row per object, zeros included: excluded rows are counted, never silent. -#}
{%- set objects = salesforce_objects() -%}
with

quarantined as (
    select
        quarantined_ids.object as object_name,
        quarantined_ids.record_id
    from {{ source('ops', 'quarantined_ids') }} as quarantined_ids
),

{% for object_name, table, stamp in objects %}
{#- only the quarantined ids' versions are ranked: the count needs no other record -#}
{{ table }}_latest as (
    {{ latest_versions(
        source('salesforce', table),
        order_by=stamp ~ ' desc, _dlt_load_id desc, _dlt_id desc',
        keep_ids="select record_id from " ~ source('ops', 'quarantined_ids')
            ~ " where object = '" ~ object_name ~ "' and record_id is not null") }}
),

{{ table }}_quarantined as (
    select count(*) as quarantined_records
    from {{ table }}_latest
    inner join quarantined
        on
            quarantined.object_name = '{{ object_name }}'
            and {{ table }}_latest.id = quarantined.record_id
    where not {{ table }}_latest.is_deleted
),

{{ table }}_null_ids as (
    select count(*) as null_id_rows
    from {{ source('salesforce', table) }} as raw_rows
    where raw_rows.id is null
),

{{ table }}_counts as (
    select
        '{{ object_name }}' as object_name,
        {{ table }}_quarantined.quarantined_records,
        {{ table }}_null_ids.null_id_rows
    from {{ table }}_quarantined
    cross join {{ table }}_null_ids
),

{% endfor %}

unioned as (
    {% for object_name, table, stamp in objects %}
    select * from {{ table }}_counts
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        object_name,
        quarantined_records,
        null_id_rows,
        quarantined_records + null_id_rows as excluded_rows
    from unioned
)

select * from final
