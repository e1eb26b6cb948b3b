"""`books run --dry-run` on a small world, as a user sees it: a short console (progress lines,
the summary, the plan, the paths; Dagster's and dbt's detail only in the log file, the policy
nowhere), the plan as counts and a table with a CSV of every row, and the published analytics
file left exactly as it was."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from local_crm.generator import generate_world
from policy import resolve_paths
from tests.homes import home_env

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 6, 2)
PUBLISHED = b"the analysts' copy of the last real run"


@dataclass
class DryRun:
    result: subprocess.CompletedProcess[str]
    analytics: Path
    lines: list[str]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> DryRun:
    home = tmp_path_factory.mktemp("dry-run")
    env = {**{k: v for k, v in os.environ.items() if k != "BOOKS_POLICY"}, **home_env(home)}
    paths = resolve_paths(env)
    paths.landing.mkdir(parents=True)
    generate_world(
        paths.crm_db, accounts=300, reps=6, seed=3, months=3, as_of=AS_OF,
        landing_dir=paths.landing, policy_path=paths.policy,
    )  # fmt: skip
    analytics = paths.warehouse.with_name("analytics.duckdb")
    analytics.write_bytes(PUBLISHED)  # stands for what the last real run published
    result = subprocess.run(
        [sys.executable, "-m", "books_cli.main", "run", "--as-of", AS_OF.isoformat(),
         "--dry-run", "--override-guard"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=3600,
    )  # fmt: skip
    lines = (result.stdout + result.stderr).splitlines()
    return DryRun(result, analytics, lines)


def _path_after(prefix: str, lines: list[str]) -> Path:
    line = next(line for line in lines if line.startswith(prefix))
    return Path(line.removeprefix(prefix).strip().split()[0])


@pytest.mark.slow
def test_a_dry_run_never_replaces_the_published_tables(dry_run: DryRun) -> None:
    assert dry_run.result.returncode == 0, dry_run.result.stderr
    assert dry_run.analytics.read_bytes() == PUBLISHED
    assert "analytics: not published by a dry run" in dry_run.result.stdout


@pytest.mark.slow
def test_the_console_is_short_and_the_detail_is_in_the_log(dry_run: DryRun) -> None:
    lines = dry_run.lines
    assert dry_run.result.returncode == 0, dry_run.result.stderr
    assert len(lines) < 60, "\n".join(lines)
    console = "\n".join(lines)
    assert " - dagster - " not in console  # no Dagster event lines
    assert not re.search(r"^\d+ of \d+ (START|OK|PASS)", console, re.M)  # no dbt node lines
    assert "working_window_days" not in console  # the policy is never printed
    assert any(re.match(r"\[ *\d+\.\ds\] step dbt_models done in ", line) for line in lines)
    log = _path_after("log:", lines).read_text()
    assert re.search(r"^\d+ of \d+ START", log, re.M)  # every dbt node is in the log file
    assert "STEP_SUCCESS" in log


@pytest.mark.slow
def test_the_dry_run_prints_its_plan_and_a_csv_of_every_row(dry_run: DryRun) -> None:
    lines = dry_run.lines
    assert dry_run.result.returncode == 0, dry_run.result.stderr
    head = next(line for line in lines if line.startswith("dry-run plan: "))
    counts = re.match(r"dry-run plan: ([\d,]+) records, ([\d,]+) field changes", head)
    assert counts, head
    records, changes = (int(n.replace(",", "")) for n in counts.groups())
    kinds = dict(
        (kind, int(n.replace(",", "")))
        for kind, n in re.findall(r"([\w+]+) ([\d,]+)", head.split("by change kind: ")[1])
    )
    assert "distribute" in kinds  # launch day: the pool is distributed
    header = lines.index("owner changes by user:") + 1
    assert lines[header].split() == ["user", "gains", "losses"]
    table = next(i for i, line in enumerate(lines) if line.startswith("first ")) + 1
    assert lines[table].split() == ["account", "field", "before", "after", "reason"]
    with _path_after("every change:", lines).open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == changes
    assert len({(r["object"], r["record_id"]) for r in rows}) == records
    by_kind: dict[str, set[str]] = {}
    for row in rows:
        by_kind.setdefault(row["change_kind"], set()).add(row["record_id"])
    assert {k: len(v) for k, v in by_kind.items()} == kinds
    owner_moves = [r for r in rows if r["field"] == "OwnerId"]
    assert owner_moves and all(r["before"] != r["after"] for r in owner_moves)
    first = lines[table + 2].split("  ")[0].strip().rstrip("…")
    assert any(r["record_name"].startswith(first) for r in rows)
