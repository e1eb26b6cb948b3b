{#- Records whose latest version is deleted. Entity staging models drop them; this model keeps
    them countable (one row per object and id) so nothing disappears silently. -#}
{%- set objects = salesforce_objects() -%}
with

{% for object_name, table, stamp in objects %}
{#- only ids with a deleted version can have a deleted latest version -#}
{{ table }}_latest as (
    {{ latest_versions(
        source('salesforce', table),
        order_by=stamp ~ ' desc, _dlt_load_id desc, _dlt_id desc',
        keep_ids="select id from " ~ source('salesforce', table) ~ " where is_deleted") }}
),
{% endfor %}

deleted as (
    {% for object_name, table, stamp in objects %}
    select
        '{{ object_name }}' as object_name,
        cast(id as {{ dbt.type_string() }}) as record_id,
        {{ stamp }} as deleted_at
    from {{ table }}_latest
    where is_deleted
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        {{ dbt.concat(['object_name', "':'", 'record_id']) }} as deleted_record_key,
        object_name,
        record_id,
        deleted_at
    from deleted
)

select * from final
