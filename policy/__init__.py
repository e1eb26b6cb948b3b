"""The validated policy (books.yml): model, loading, version hash, dbt vars, safe filters."""

from policy.filters import Condition
from policy.loader import (
    DBT_POLICY_ENV,
    PolicyError,
    canonical_json,
    load_policy,
    policy_dbt_env,
    policy_dbt_vars,
    policy_version,
    short_version,
    to_dbt_vars,
    validate_policy_data,
)
from policy.model import Policy
from policy.paths import BooksPaths, resolve_paths

__all__ = [
    "DBT_POLICY_ENV",
    "BooksPaths",
    "Condition",
    "Policy",
    "PolicyError",
    "canonical_json",
    "load_policy",
    "policy_dbt_env",
    "policy_dbt_vars",
    "policy_version",
    "resolve_paths",
    "short_version",
    "to_dbt_vars",
    "validate_policy_data",
]
