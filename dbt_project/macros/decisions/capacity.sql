{#- The one capacity model (R6, R7, R10). A rep's book counts against its total target: the
    fit slots plus the intent slots. The slot kinds only partition the book: owned in-market
    accounts fill the intent slots first; every other owned account fills a fit slot, and once
    the fit slots are full it takes a free intent slot. So the open slots of both kinds add up to
    max(target - book, 0) and no route can take a book past its target. Expressions over per-rep
    columns: `owned` (working or stale accounts), `in_market` (those in market) and the two
    capacities. -#}
{% macro capacity_intent_count(owned, in_market, fit_capacity, intent_capacity) -%}
    least(
        {{ intent_capacity }},
        least({{ in_market }}, {{ intent_capacity }})
        + greatest({{ owned }} - least({{ in_market }}, {{ intent_capacity }}) - {{ fit_capacity }}, 0)
    )
{%- endmacro %}

{% macro capacity_fit_count(owned, in_market, fit_capacity, intent_capacity) -%}
    {{ owned }} - {{ capacity_intent_count(owned, in_market, fit_capacity, intent_capacity) }}
{%- endmacro %}

{#- The count of a book's accounts in slots of `slot_kind` ('fit' or 'intent', a column), for a
    book of `owned` accounts of which `in_market` are in market. -#}
{% macro capacity_slot_count(slot_kind, owned, in_market, fit_capacity, intent_capacity) -%}
    case
        when {{ slot_kind }} = 'intent'
            then {{ capacity_intent_count(owned, in_market, fit_capacity, intent_capacity) }}
        else {{ capacity_fit_count(owned, in_market, fit_capacity, intent_capacity) }}
    end
{%- endmacro %}
