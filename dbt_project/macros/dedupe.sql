{#- The latest version of every record of a raw table: one row per id, newest by the modstamp,
    then the newest dlt load (a merge that replays a page may land the same version twice).
    Deleted records are kept here (is_deleted) so staging can count them. -#}
{% macro latest_versions(relation, order_by='system_modstamp desc, _dlt_load_id desc, _dlt_id desc') -%}
    select *
    from (
        select
            versions.*,
            row_number() over (partition by versions.id order by {{ order_by }}) as version_rank
        from {{ relation }} as versions
    ) as ranked
    where version_rank = 1
{%- endmacro %}
