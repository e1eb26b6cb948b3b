{#- A sum of decimal scores that does not depend on the order rows are added in. Floating-point
    addition is not associative and a parallel engine adds rows in a different order from run to
    run, so sum(<double>) can differ in its last bit between two builds of the same inputs
    (measured: one S account's timing score 65.59857583203662 in one build, ...663 in the next),
    and a score on a threshold or a tie in a ranking would then decide differently. Each value
    is rounded to `decimals` places and added as an integer count of 10^-decimals (integer
    addition is exact in any order), then scaled back. -#}
{% macro exact_sum(expression, decimals=9) -%}
    cast(sum(cast(round(({{ expression }}) * 1e{{ decimals }}) as bigint)) as double)
    / 1e{{ decimals }}
{%- endmacro %}
