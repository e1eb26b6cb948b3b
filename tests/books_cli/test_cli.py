"""The `books` CLI: user mistakes give one line and exit 2, never a traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from books_cli import main as cli
from books_cli.progress import ProgressPrinter
from tests.homes import home_env

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = [
    ["demo"],
    ["run"],
    ["generate"],
    ["local-crm"],
    ["local-crm", "serve"],
    ["validate-policy"],
    ["ui"],
]


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point every path at a temporary folder so no test touches data/."""
    values = home_env(tmp_path)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BOOKS_POLICY", raising=False)
    return {**os.environ, **values}


def with_local_crm(env: dict[str, str]) -> None:
    """`books run` checks that the local CRM exists before it starts (tests with a fake runner)."""
    Path(env["BOOKS_CRM_DB"]).touch()


def books(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "books_cli.main", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def bad_policy(tmp_path: Path) -> Path:
    text = (REPO / "books.yml").read_text()
    assert "working_window_days: 30" in text
    path = tmp_path / "bad.yml"
    path.write_text(text.replace("working_window_days: 30", "working_window_days: 7"))
    return path


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_help_of_each_subcommand(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main([*command, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: books {' '.join(command)}")
    assert "--policy" in out


def test_validate_policy_good(env: dict[str, str]) -> None:
    result = books(["validate-policy"], env)
    assert result.returncode == 0, result.stderr
    assert f"{REPO / 'books.yml'}: valid (policy version " in result.stdout


def test_validate_policy_bad_exits_2_naming_the_field(tmp_path: Path, env: dict[str, str]) -> None:
    path = bad_policy(tmp_path)
    result = books(["validate-policy", str(path)], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert "lifecycle.working_window_days" in lines[0] and "15..90" in lines[0]


def test_global_policy_option_and_env_var(tmp_path: Path, env: dict[str, str]) -> None:
    path = bad_policy(tmp_path)
    assert books(["--policy", str(path), "validate-policy"], env).returncode == 2
    assert books(["validate-policy", "--policy", str(path)], env).returncode == 2
    assert books(["validate-policy"], {**env, "BOOKS_POLICY": str(path)}).returncode == 2


def test_bad_policy_stops_run_before_anything_runs(tmp_path: Path, env: dict[str, str]) -> None:
    result = books(["run", "--as-of", "2025-01-06", "--policy", str(bad_policy(tmp_path))], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "lifecycle.working_window_days" in result.stderr
    assert not Path(env["BOOKS_WAREHOUSE"]).exists()


@pytest.mark.parametrize("value", ["2025-13-01", "yesterday", "2025-02-30"])
def test_bad_date_exits_2(value: str, env: dict[str, str]) -> None:
    result = books(["run", "--as-of", value], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"invalid date '{value}' (expected YYYY-MM-DD)" in result.stderr


def test_missing_policy_file_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    result = books(["validate-policy", str(tmp_path / "missing.yml")], env)
    assert result.returncode == 2
    assert "missing.yml: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_refuses_to_replace_without_force(env: dict[str, str]) -> None:
    Path(env["BOOKS_CRM_DB"]).write_text("existing")
    result = books(["generate", "--accounts", "10", "--reps", "2", "--seed", "1"], env)
    assert result.returncode == 2
    assert "already exists; pass --force" in result.stderr
    assert Path(env["BOOKS_CRM_DB"]).read_text() == "existing"


def test_generate_rejects_non_positive_counts(env: dict[str, str]) -> None:
    result = books(["generate", "--accounts", "0", "--reps", "2", "--seed", "1"], env)
    assert result.returncode == 2
    assert "argument --accounts: 0 must be >= 1" in result.stderr


def test_locked_warehouse_is_a_one_line_error(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = env["BOOKS_WAREHOUSE"]
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "con.execute('create table t as select 1'); print('ready', flush=True); time.sleep(60)",
         warehouse],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"

        def fake_run_cycle(**_: Any) -> None:
            import duckdb

            duckdb.connect(warehouse)

        monkeypatch.setattr(cli, "_import", lambda *_: fake_run_cycle)
        code = cli.main(["run", "--as-of", "2025-01-06", "-q"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("books: error: the warehouse is in use by another process")
    assert len(err.strip().splitlines()) == 1


def test_missing_component_is_a_clear_message() -> None:
    with pytest.raises(cli.Unavailable, match="the runner is not available: module 'no_such_pkg'"):
        cli._import("no_such_pkg.runner", "run_cycle", "the runner")
    with pytest.raises(cli.Unavailable, match=r"policy\.nothing_here is missing"):
        cli._import("policy", "nothing_here", "a thing")


def test_run_passes_arguments_to_the_runner(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    class Summary:
        def render(self) -> str:
            return "summary text"

    def fake_run_cycle(**kwargs: Any) -> Summary:
        seen.update(kwargs)
        seen["env_warehouse"] = os.environ["BOOKS_WAREHOUSE"]
        return Summary()

    with_local_crm(env)
    monkeypatch.setattr(cli, "_import", lambda *_: fake_run_cycle)
    assert cli.main(["run", "--as-of", "2025-01-06", "--dry-run", "-q"]) == 0
    assert seen["as_of"].isoformat() == "2025-01-06"
    assert seen["dry_run"] is True and seen["override_guard"] is False
    assert seen["env_warehouse"] == env["BOOKS_WAREHOUSE"]
    assert "summary text" in capsys.readouterr().out
    assert seen["reconcile"] is False and seen["lease_wait_seconds"] == 0
    assert cli.main(["run", "--as-of", "2025-01-06", "--reconcile", "--wait", "30", "-q"]) == 0
    assert seen["reconcile"] is True and seen["lease_wait_seconds"] == 30


def test_a_busy_pool_is_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestration.pools import PoolBusyError

    def fake_run_cycle(**_: Any) -> None:
        raise PoolBusyError("pool duckdb_writer held by run r1 (step salesforce_raw): waited 0s")

    with_local_crm(env)
    monkeypatch.setattr(cli, "_import", lambda *_: fake_run_cycle)
    assert cli.main(["run", "--as-of", "2025-01-06", "-q"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "books: error: pool duckdb_writer held by run r1 (step salesforce_raw): waited 0s\n"
    )


def test_help_starts_fast_without_heavy_imports() -> None:
    code = (
        "import sys, books_cli.main as m\n"
        "heavy = [n for n in ('dagster', 'duckdb', 'polars', 'pydantic', 'dlt') if n in sys.modules]\n"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "[]", result.stderr


def test_progress_printer_throttles_and_formats() -> None:
    stream = io.StringIO()
    progress = ProgressPrinter(stream, min_interval=60)
    progress("accounts", 1, 4)  # a short stage: only its end shows
    progress("accounts", 2, 4)
    progress("accounts", 4, 4)  # the final update always shows
    progress("done")
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["accounts 4/4 (100%)", "done"]
    every = io.StringIO()
    progress = ProgressPrinter(every, min_interval=0)  # a long stage: a line per interval
    for done in range(1, 4):
        progress("contacts", done, 3)
    assert [line.split("] ", 1)[1] for line in every.getvalue().splitlines()] == [
        "contacts 1/3 (33%)",
        "contacts 2/3 (67%)",
        "contacts 3/3 (100%)",
    ]
    quiet = io.StringIO()
    ProgressPrinter(quiet, quiet=True)("x")
    assert quiet.getvalue() == ""
    assert time.monotonic() > 0


def test_demo_goes_through_run_demo_with_the_shared_defaults(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestration import demo

    seen: dict[str, Any] = {}

    class Cycle:
        success = False

    class Summary:
        cycle = Cycle()

        def render(self) -> str:
            return "demo summary"

    def fake_run_demo(progress: Any, **kwargs: Any) -> Summary:
        seen.update(kwargs)
        return Summary()

    imported: list[tuple[str, str]] = []

    def fake_import(module: str, name: str, what: str) -> Any:
        imported.append((module, name))
        return fake_run_demo

    monkeypatch.setattr(cli, "_import", fake_import)
    code = cli.main(["demo", "-q"])
    assert imported == [("orchestration.runner", "run_demo")]
    assert code == cli.EXIT_FAILED  # the cycle failed: the exit code says so
    assert (seen["accounts"], seen["reps"], seen["seed"]) == (
        demo.DEMO_ACCOUNTS,
        demo.DEMO_REPS,
        demo.DEMO_SEED,
    )
    assert seen["as_of"] is None  # run_demo picks the CRM clock or the demo date
    assert str(seen["paths"].crm_db) == env["BOOKS_CRM_DB"]
    assert "demo summary" in capsys.readouterr().out


def test_ui_writes_the_pool_limit_before_starting_dagster(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, **_: commands.append(cmd) or 0)
    assert cli.main(["ui", "-q"]) == 0
    config = Path(env["DAGSTER_HOME"]) / "dagster.yaml"
    assert "default_limit: 1" in config.read_text()
    (command,) = commands
    assert command[1:4] == ["dev", "-m", "orchestration.definitions"]


def test_a_cycle_holding_the_warehouse_is_a_one_line_error(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from warehouse.lease import acquire

    with_local_crm(env)
    with acquire(env["BOOKS_WAREHOUSE"], "books cycle other-run"):
        code = cli.main(["run", "--as-of", "2025-06-02", "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("books: error: warehouse ")
    assert "'books cycle other-run'" in err
    assert len(err.strip().splitlines()) == 1
    assert not Path(env["BOOKS_WAREHOUSE"]).exists()  # nothing ran


def test_run_without_a_date_is_as_of_the_local_crm_clock(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`books run` on the 2025 demo world, in any year, runs as of the CRM's day."""
    from datetime import UTC, datetime

    from local_crm.db import CrmStore
    from orchestration.cycle import crm_today

    CrmStore(Path(env["BOOKS_CRM_DB"])).clock.set(datetime(2025, 6, 2, 9, tzinfo=UTC))
    seen: dict[str, Any] = {}

    class Summary:
        def render(self) -> str:
            return "summary text"

    def fake_run_cycle(**kwargs: Any) -> Summary:
        seen.update(kwargs)
        return Summary()

    real = {"crm_today": crm_today}
    monkeypatch.setattr(cli, "_import", lambda _m, name, _w: real.get(name, fake_run_cycle))
    assert cli.main(["run", "--dry-run", "-q"]) == 0
    assert seen["as_of"].isoformat() == "2025-06-02"


def test_run_on_spark_without_its_connection_stops_before_anything_runs(
    tmp_path: Path, env: dict[str, str]
) -> None:
    policy = tmp_path / "spark.yml"
    policy.write_text((REPO / "books.yml").read_text() + "\nwarehouse:\n  engine: spark\n")
    with_local_crm(env)
    env = {k: v for k, v in env.items() if not k.startswith("BOOKS_SPARK_")}
    result = books(["run", "--as-of", "2025-01-06", "--policy", str(policy)], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BOOKS_SPARK_MASTER" in result.stderr
    assert not Path(env["BOOKS_WAREHOUSE"]).exists()
