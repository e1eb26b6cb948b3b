with

source as (
    select * from {{ source('files', 'intent_surges') }}
),

renamed as (
    select
        {{ dbt.hash(dbt.concat([
            "coalesce(domain, '')", "'|'", "coalesce(topic, '')", "'|'",
            "coalesce(cast(week_start_date as " ~ dbt.type_string() ~ "), '')"])) }} as intent_surge_id,
        {{ normalize_domain('domain') }} as web_domain,
        topic,
        cast(score as {{ dbt.type_float() }}) as intent_score,
        week_start_date,
        _file_name as file_name,
        _loaded_at as loaded_at,
        row_number() over (
            partition by domain, topic, week_start_date
            order by _loaded_at desc, _file_name desc
        ) as load_rank
    from source
),

deduplicated as (
    select
        intent_surge_id,
        web_domain,
        topic,
        intent_score,
        week_start_date,
        file_name,
        loaded_at
    from renamed
    where load_rank = 1
)

select * from deduplicated
