"""`python -m policy [books.yml]`: the validated policy as the JSON dbt reads from the
environment variable BOOKS_DBT_POLICY, for running dbt or sqlfluff by hand:

    BOOKS_DBT_POLICY="$(python -m policy books.yml)" dbt build --project-dir dbt_project ...
"""

import sys

from policy.loader import DBT_POLICY_ENV, PolicyError, load_policy, policy_dbt_env


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "books.yml"
    try:
        policy = load_policy(path)
    except PolicyError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    sys.stdout.write(policy_dbt_env(policy)[DBT_POLICY_ENV] + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
