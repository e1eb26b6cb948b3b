"""A/B of two versions of the dbt project on one warehouse: which builds faster, and do both
build the same rows.

Why: on this shared machine, stages that did not change move by 10-30% between benchmark runs,
more than most model changes gain. Two single benchmark runs judge the machine, not
the change. This script builds both versions on ONE copy of a benchmark warehouse, alternating
(a warm-up build of each, then A B A B ...), each build a fresh `dbt build` process with its own
target folder, and prints every build's wall time, the median and minimum per version and the
models whose dbt time differs most. After every timed build it fingerprints every model table
(row count and an order-independent hash of the rows, columns sorted by name): a refactor shows
whether it changed any result, and a version whose own builds disagree is not deterministic.

Daily mode (the default) re-makes the daily delta before every build: the rows of the newest raw
load are deleted from the incremental activity models (`raw_load_id`), this run's rows from
`ownership_history` and `book_decisions`, so every build selects, deletes and inserts the real
delta instead of finding it merged. `--full-refresh` rebuilds everything in every build.

    .venv/bin/python benchmarks/ab.py --a main~1 --b WORKTREE \\
        --warehouse $BOOKS_BENCH_CACHE/work/L-1000000/direct/wh/warehouse.duckdb --runs 3

`--a`/`--b` take a git revision or WORKTREE (this checkout as it is on disk). The warehouse is
copied, never touched; the run context (as-of date, run id) is the one the copy holds, and the
policy vars come from this checkout's books.yml.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

if __package__ in (None, ""):  # `python benchmarks/ab.py`: make the repo importable, as run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.stages import dbt_policy_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORKTREE = "WORKTREE"


@dataclass
class Version:
    """One side of the comparison: a checkout of the project and what its builds measured."""

    label: str
    revision: str
    root: Path
    work: Path
    walls: list[float] = field(default_factory=list)
    model_times: dict[str, list[float]] = field(default_factory=dict)
    fingerprints: list[dict[str, tuple[int, int]]] = field(default_factory=list)

    def unstable(self) -> list[str]:
        """Models whose rows differed between this version's own builds (nondeterminism)."""
        first = self.fingerprints[0]
        return sorted(
            {n for later in self.fingerprints[1:] for n in first if later.get(n) != first[n]}
        )


def checkout(revision: str, into: Path) -> Path:
    """The project at `revision` (`git archive`, no worktree bookkeeping), or this checkout."""
    if revision == WORKTREE:
        return REPO
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {revision}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def remake_daily_delta(warehouse: Path) -> None:
    """Undo what the last build merged incrementally, so the next build redoes it."""
    with duckdb.connect(str(warehouse)) as con:
        ((run_id, as_of),) = con.execute(
            "select run_id, as_of_date from ops.run_context"
        ).fetchall()
        columns = con.sql(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where column_name in ('raw_load_id', 'run_id', 'as_of_date')"
            " and table_schema in ('staging', 'marts', 'decisions')"
        ).fetchall()
        for schema, table, column in columns:
            relation = f'"{schema}"."{table}"'
            if column == "raw_load_id" and table.startswith("base_"):
                con.execute(
                    f"delete from {relation} where raw_load_id = "
                    f"(select max(raw_load_id) from {relation})"
                )
            elif (schema, table, column) == ("decisions", "book_decisions", "run_id"):
                con.execute(f"delete from {relation} where run_id = ?", [run_id])
            elif (schema, table, column) == ("marts", "ownership_history", "as_of_date"):
                con.execute(f"delete from {relation} where as_of_date = ?", [as_of])


def _reads_policy_from_env(version: Version) -> bool:
    """Whether this revision's dbt project reads the policy from the environment (later ones)
    or from `--vars` (earlier ones)."""
    macro = version.root / "dbt_project" / "macros" / "policy.sql"
    return "BOOKS_DBT_POLICY" in macro.read_text()


def build(version: Version, warehouse: Path, args: argparse.Namespace) -> float:
    """One `dbt build` of `version` in a fresh process; its wall seconds (per-model dbt times
    are kept). A failed build stops the comparison: its times would mean nothing."""
    target = version.work / "target"
    command = [
        str(Path(sys.executable).with_name("dbt")), "build",
        "--project-dir", str(version.root / "dbt_project"),
        "--profiles-dir", str(version.root / "dbt_project"),
        "--target-path", str(target),
        "--log-path", str(version.work / "logs"),
        "--selector", args.selector,
        "--quiet",
    ]  # fmt: skip
    policy_env = dbt_policy_env(str(REPO / "books.yml"))
    if not _reads_policy_from_env(version):  # a revision from before the policy left --vars
        command += ["--vars", json.dumps({"policy": json.loads(*policy_env.values())})]
    if args.full_refresh:
        command.append("--full-refresh")
    env = {
        **os.environ,
        **policy_env,
        "BOOKS_WAREHOUSE": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "0",
    }
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dbt build of {version.label} ({version.revision}) failed:\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")  # fmt: skip
    for node in json.loads((target / "run_results.json").read_text())["results"]:
        if node["unique_id"].startswith("model."):
            name = node["unique_id"].rsplit(".", 1)[-1]
            version.model_times.setdefault(name, []).append(node["execution_time"])
    return wall


# Columns that count the builds of one run, not what it decided: every timed build re-runs the
# same run id, which the run-history models record as the run's next attempt.
BUILD_COUNTERS = {"attempt"}


def fingerprints(warehouse: Path, manifest: Path) -> dict[str, tuple[int, int]]:
    """(rows, order-independent hash of the rows, build counters left out) of every model the
    manifest built."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    models = [n for n in nodes if n["resource_type"] == "model" and n["config"]["enabled"]]
    out: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for node in models:
            if node["config"].get("materialized") == "ephemeral":
                continue
            schema, table = node["schema"], node["alias"] or node["name"]
            names = sorted(
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = ? and table_name = ?",
                    [schema, table],
                ).fetchall()
                if row[0] not in BUILD_COUNTERS
            )
            if not names:
                continue  # not built by this selector
            row_hash = "hash(" + ", ".join(f'"{n}"' for n in names) + ")"
            ((count, total),) = con.execute(
                f'select count(*), coalesce(sum({row_hash}), 0) from "{schema}"."{table}"'
            ).fetchall()
            out[node["name"]] = (int(count), int(total))
    return out


def report(a: Version, b: Version, top: int) -> str:
    """The comparison as plain text: every build, medians, minima, the models that moved."""
    lines = [f"{'build':<8}" + "".join(f"{v.label} = {v.revision:<14}" for v in (a, b))]
    for i, (x, y) in enumerate(zip(a.walls, b.walls, strict=True), start=1):
        lines.append(f"run {i:<4}{x:>8.2f} s{'':<12}{y:>8.2f} s")
    ma, mb = statistics.median(a.walls), statistics.median(b.walls)
    lines += [
        f"median  {ma:>8.2f} s{'':<12}{mb:>8.2f} s   B/A = {mb / ma:.3f}",
        f"min     {min(a.walls):>8.2f} s{'':<12}{min(b.walls):>8.2f} s",
        "",
        f"models whose median dbt time moved most (of {len(a.model_times | b.model_times)}):",
    ]
    names = set(a.model_times) | set(b.model_times)

    def median(v: Version, name: str) -> float:
        return statistics.median(v.model_times[name]) if name in v.model_times else 0.0

    moved = sorted(names, key=lambda n: -abs(median(b, n) - median(a, n)))[:top]
    for name in moved:
        lines.append(f"  {name:<44}{median(a, name):>7.2f} -> {median(b, name):>7.2f} s")
    last_a, last_b = a.fingerprints[-1], b.fingerprints[-1]
    differ = sorted(n for n in set(last_a) | set(last_b) if last_a.get(n) != last_b.get(n))
    lines.append("")
    if differ:
        lines.append(f"rows differ in {len(differ)} models after the last builds (rows A -> B):")
        for name in differ:
            rows = [fp.get(name, ("absent", 0))[0] for fp in (last_a, last_b)]
            lines.append(f"  {name:<44}{rows[0]!s:>10} -> {rows[1]!s:>10}")
    else:
        lines.append(f"same rows in all {len(last_a)} models both versions built")
    for version in (a, b):
        if unstable := version.unstable():
            lines.append(
                f"NOT DETERMINISTIC: {version.label}'s own {len(version.fingerprints)} builds "
                f"disagree in {', '.join(unstable)}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="git revision, or WORKTREE")
    parser.add_argument("--b", default=WORKTREE, help="git revision, or WORKTREE (default)")
    parser.add_argument("--warehouse", required=True, type=Path, help="a benchmark warehouse")
    parser.add_argument("--runs", type=int, default=3, help="timed builds per version")
    parser.add_argument("--selector", default="books_cycle_transform")
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--top", type=int, default=12, help="models to list")
    parser.add_argument("--scratch", type=Path, help="work folder (default: a temp folder)")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        raise SystemExit(f"no warehouse at {args.warehouse} (run benchmarks/run.py first)")

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="books-ab-"))
    # The file name is the catalog name in the compiled SQL: keep it.
    warehouse = scratch / "wh" / args.warehouse.name
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(args.warehouse, warehouse)
    a, b = (
        Version(label, rev, checkout(rev, scratch / f"src-{label}"), scratch / f"dbt-{label}")
        for label, rev in (("A", args.a), ("B", args.b))
    )
    try:
        for i in range(args.runs + 1):  # round 0 warms both up (parse, caches); not counted
            for version in (a, b):
                if not args.full_refresh:
                    remake_daily_delta(warehouse)
                wall = build(version, warehouse, args)
                if i == 0:
                    version.model_times.clear()
                else:
                    version.walls.append(wall)
                    version.fingerprints.append(
                        fingerprints(warehouse, version.work / "target" / "manifest.json")
                    )
                print(f"[ab {time.strftime('%H:%M:%S')}] round {i} {version.label}: {wall:.2f} s",
                      flush=True)  # fmt: skip
        text = report(a, b, args.top)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(text)
    return text


if __name__ == "__main__":
    main()
