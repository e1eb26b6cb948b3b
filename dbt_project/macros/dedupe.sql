{#- The latest version of every record of a raw table: one row per id, newest by the modstamp,
    then the newest dlt load (a merge that replays a page may land the same version twice).
    Deleted records are kept here (is_deleted) so staging can count them.
    Ranking every row (a window over all columns of 20M tasks) costs more than the rest of the
    model and holds the whole table in memory; only ids with several versions (usually none)
    need it, so the others pass straight through. Same rows as ranking all of them: a null id is
    one partition, as in `partition by id`. `keep_ids`: optional subquery of the ids wanted, a
    filter on whole partitions (the null-id one is always kept), so their ranking is unchanged. -#}
{% macro latest_versions(
    relation,
    order_by='system_modstamp desc, _dlt_load_id desc, _dlt_id desc',
    keep_ids=none
) -%}
    {%- set multi_version_ids -%}
        select multi.id
        from {{ relation }} as multi
        where
            multi.id is not null
            {%- if keep_ids is not none %}
            and multi.id in ({{ keep_ids }})
            {%- endif %}
        group by multi.id
        having count(*) > 1
    {%- endset %}
    select
        single_versions.*,
        1 as version_rank
    from {{ relation }} as single_versions
    where
        single_versions.id is not null
        and single_versions.id not in ({{ multi_version_ids }})
        {%- if keep_ids is not none %}
        and single_versions.id in ({{ keep_ids }})
        {%- endif %}
    union all
    select *
    from (
        select
            versions.*,
            row_number() over (partition by versions.id order by {{ order_by }}) as version_rank
        from {{ relation }} as versions
        where
            (versions.id is null or versions.id in ({{ multi_version_ids }}))
            {%- if keep_ids is not none %}
            and (versions.id is null or versions.id in ({{ keep_ids }}))
            {%- endif %}
    ) as ranked
    where version_rank = 1
{%- endmacro %}

{#- For an incremental model built with `latest_versions` over the raw table `relation`: the ids
    with a raw row loaded after the newest raw load the model already holds (its `raw_load_id`
    column), to pass as `keep_ids`; none on a full build. Why this is exact: ingestion merges on
    id and never removes an id (a deleted record stays as its tombstone), and the single writer
    commits loads in load-id order, so every other id's latest version is already in the model.
    An id read again is harmless: its latest version is ranked again from all its raw rows. -#}
{% macro ids_loaded_since_last_build(relation) -%}
    {%- if is_incremental() -%}
        {%- set ids -%}
            select loaded.id
            from {{ relation }} as loaded
            where loaded._dlt_load_id > (
                select coalesce(max(built.raw_load_id), '') from {{ this }} as built
            )
        {%- endset -%}
        {{- return(ids) -}}
    {%- endif -%}
    {{- return(none) -}}
{%- endmacro %}
