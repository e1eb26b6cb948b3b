{#- Render the policy's structured filters ({field, op, value}) as SQL, safely.

    Why: segment filters and fit rules come from a user-edited file. Only whitelisted operators
    are rendered; fields must be known columns (mapped, never interpolated); numbers must be
    numbers; strings become quoted literals with '' escaping (and backslash escaping on engines
    that treat backslash as an escape). A hostile value is either a quoted literal or an error. -#}

{% macro sql_number(value, context) -%}
    {%- if value is boolean or value is not number -%}
        {{ exceptions.raise_compiler_error(context ~ ": expected a number, got '" ~ value ~ "'") }}
    {%- endif -%}
    {#- re-check the rendered text: only digits, one dot, sign, exponent -#}
    {%- set text = value | string -%}
    {%- if not modules.re.match('^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$', text) -%}
        {{ exceptions.raise_compiler_error(context ~ ": not a plain number: '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}

{% macro sql_string_literal(value) -%}
    {{ return(adapter.dispatch('sql_string_literal', 'dynamic_books')(value)) }}
{%- endmacro %}

{% macro default__sql_string_literal(value) -%}
    {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{%- endmacro %}

{#- Spark and BigQuery read backslash escapes inside string literals. -#}
{% macro spark__sql_string_literal(value) -%}
    {{ return("'" ~ (value | string | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'") }}
{%- endmacro %}

{% macro bigquery__sql_string_literal(value) -%}
    {{ return(spark__sql_string_literal(value)) }}
{%- endmacro %}

{% macro sql_literal(value, context) -%}
    {%- if value is none -%}
        {{ exceptions.raise_compiler_error(context ~ ": null value; use op is_null / is_not_null") }}
    {%- elif value is boolean -%}
        {{ return('true' if value else 'false') }}
    {%- elif value is number -%}
        {{ return(sql_number(value, context)) }}
    {%- elif value is string -%}
        {{ return(sql_string_literal(value)) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(context ~ ": unsupported value '" ~ value ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- Column (in the staging model) for a policy field named as in Salesforce (`NumberOfEmployees`)
    or already in the staging name (`employee_count`). Unknown fields fail at compile time. -#}
{% macro account_field_column(field, context) -%}
    {%- set columns = {
        'Id': 'account_id', 'OwnerId': 'owner_id', 'Name': 'account_name', 'Website': 'website',
        'Industry': 'industry', 'NumberOfEmployees': 'employee_count',
        'AnnualRevenue': 'annual_revenue', 'BillingCountry': 'billing_country',
        'BillingState': 'billing_state', 'ParentId': 'parent_account_id', 'Type': 'account_type',
        'Book_Status__c': 'book_status', 'Last_Touch_Date__c': 'crm_last_touch_date',
        'Distribution_Date__c': 'distribution_date',
        'Distribution_Reason__c': 'distribution_reason', 'Return_Date__c': 'return_date',
        'Return_Reason__c': 'return_reason', 'Rest_Until__c': 'rest_until_date',
        'Return_Requested__c': 'pending_return_reason',
        'Return_Requested_By__c': 'return_requested_by_id', 'Get_Back_Date__c': 'get_back_date',
        'Competitor_Renewal_Date__c': 'competitor_renewal_date',
        'External_Fit_Score__c': 'external_fit_score',
        'CreatedDate': 'created_at', 'SystemModstamp': 'modified_at',
    } -%}
    {%- if field in columns -%}
        {{ return(columns[field]) }}
    {%- elif field in columns.values() -%}
        {{ return(field) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            context ~ ": unknown Account field '" ~ field ~ "' (known: "
            ~ (columns.keys() | list | join(', ')) ~ ")") }}
    {%- endif -%}
{%- endmacro %}

{#- One {field, op, value} condition as SQL over `relation_alias`. -#}
{% macro policy_condition(rule, context, relation_alias=none) -%}
    {%- if rule is not mapping or 'field' not in rule or 'op' not in rule -%}
        {{ exceptions.raise_compiler_error(context ~ ": a condition needs field and op") }}
    {%- endif -%}
    {%- set column = account_field_column(rule['field'], context) -%}
    {%- set col = (relation_alias ~ '.' ~ column) if relation_alias else column -%}
    {%- set op = rule['op'] | string | lower | trim -%}
    {%- set value = rule.get('value') -%}
    {%- set comparisons = {'=': '=', '==': '=', 'eq': '=', '!=': '<>', '<>': '<>', 'ne': '<>',
                           '<': '<', 'lt': '<', '<=': '<=', 'le': '<=', '>': '>', 'gt': '>',
                           '>=': '>=', 'ge': '>='} -%}
    {%- if op in comparisons -%}
        {{ return('(' ~ col ~ ' ' ~ comparisons[op] ~ ' ' ~ sql_literal(value, context) ~ ')') }}
    {%- elif op in ('in', 'not_in', 'not in') -%}
        {%- if value is string or value is not iterable or value is mapping -%}
            {{ exceptions.raise_compiler_error(context ~ ": op " ~ op ~ " needs a list value") }}
        {%- endif -%}
        {%- set literals = [] -%}
        {%- for item in value -%}
            {%- do literals.append(sql_literal(item, context)) -%}
        {%- endfor -%}
        {%- if op == 'in' -%}
            {{ return('(' ~ col ~ ' in (' ~ literals | join(', ') ~ '))' if literals else '(1 = 0)') }}
        {%- else -%}
            {{ return('(' ~ col ~ ' not in (' ~ literals | join(', ') ~ '))' if literals
                      else '(' ~ col ~ ' is not null)') }}
        {%- endif -%}
    {%- elif op == 'contains' -%}
        {%- if value is not string -%}
            {{ exceptions.raise_compiler_error(context ~ ": op contains needs a text value") }}
        {%- endif -%}
        {{ return('(' ~ dbt.position(sql_string_literal(value), col) ~ ' > 0)') }}
    {%- elif op == 'is_null' -%}
        {{ return('(' ~ col ~ ' is null)') }}
    {%- elif op in ('is_not_null', 'not_null') -%}
        {{ return('(' ~ col ~ ' is not null)') }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(context ~ ": operator '" ~ rule['op']
            ~ "' is not allowed (=, !=, <, <=, >, >=, in, not_in, contains, is_null, is_not_null)") }}
    {%- endif -%}
{%- endmacro %}

{#- A list of conditions ANDed together; an empty list is true (matches everything). -#}
{% macro policy_filter(conditions, context, relation_alias=none) -%}
    {%- if conditions is none or conditions | length == 0 -%}
        {{ return('(1 = 1)') }}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for rule in conditions -%}
        {%- do parts.append(policy_condition(rule, context ~ '[' ~ loop.index0 ~ ']', relation_alias)) -%}
    {%- endfor -%}
    {{ return('(' ~ parts | join(' and ') ~ ')') }}
{%- endmacro %}

{#- A list of strings from the policy as an SQL in-list body: 'a', 'b'. -#}
{% macro policy_string_list(path) -%}
    {%- set values = policy_get(path) -%}
    {%- set literals = [] -%}
    {%- for item in values -%}
        {%- if item is not string -%}
            {{ exceptions.raise_compiler_error("policy." ~ path ~ ": expected strings") }}
        {%- endif -%}
        {%- do literals.append(sql_string_literal(item)) -%}
    {%- endfor -%}
    {{ return(literals | join(', ') if literals else "'__none__'") }}
{%- endmacro %}

{#- The accounts the policy holds out of dynamic books (books.held_out_accounts, e.g. a holdout
    experiment's control group) as a SQL list of string literals ('__none__' when none): the key
    is optional, so a unit test's partial policy needs no `books` section. -#}
{% macro policy_held_out_accounts() -%}
    {%- set books = policy().get('books') or {} -%}
    {%- set literals = [] -%}
    {%- for item in books.get('held_out_accounts') or [] -%}
        {%- if item is not string -%}
            {{ exceptions.raise_compiler_error("policy.books.held_out_accounts: expected strings") }}
        {%- endif -%}
        {%- do literals.append(sql_string_literal(item)) -%}
    {%- endfor -%}
    {{ return(literals | join(', ') if literals else "'__none__'") }}
{%- endmacro %}

{#- `dbt run-operation render_policy_filters --vars '{policy: ...}'`: logs (as JSON) the SQL that
    the models render for every segment filter and fit rule of the policy, with the same macros
    and error contexts. The one renderer of policy filters; tests prove its safety through this. -#}
{% macro render_policy_filters() -%}
    {%- set rendered = {'segments': [], 'fit_rules': []} -%}
    {%- for segment in policy_get('segments') -%}
        {%- do rendered['segments'].append({
            'key': segment['key'],
            'condition': policy_filter(segment.get('filter'), 'segments[' ~ loop.index0 ~ '].filter'),
        }) -%}
    {%- endfor -%}
    {%- for rule in policy_get('fit').get('rules') or [] -%}
        {%- do rendered['fit_rules'].append({
            'name': rule['name'],
            'condition': policy_condition(rule, 'fit.rules[' ~ loop.index0 ~ ']'),
        }) -%}
    {%- endfor -%}
    {%- do log(tojson(rendered), info=True) -%}
    {{ return(rendered) }}
{%- endmacro %}
