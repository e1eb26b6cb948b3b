"""The lint-time policy in `.sqlfluff` is the default books.yml, so lint compiles what runs."""

from __future__ import annotations

import configparser
import json

from tests.dbt.dbt_helpers import POLICY_FILE, REPO_ROOT, policy_vars


def _lint_policy_line() -> str:
    policy = policy_vars("2025-06-02")["policy"]
    return "policy = " + json.dumps(policy, sort_keys=True, separators=(",", ":"))


def test_sqlfluff_context_policy_is_the_default_books_yml() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO_ROOT / ".sqlfluff")
    context = config["sqlfluff:templater:dbt:context"]
    expected = _lint_policy_line()
    assert "policy" in context, f"add to .sqlfluff [sqlfluff:templater:dbt:context]:\n{expected}"
    assert json.loads(context["policy"]) == policy_vars("2025-06-02")["policy"], (
        f"{POLICY_FILE.name} changed; replace the policy line in .sqlfluff with:\n{expected}"
    )
