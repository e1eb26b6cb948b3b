"""Every user mistake a cycle can meet is one line naming what to fix, exit 2, no traceback,
and nothing is started (no warehouse file appears); every option of every command has help."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from books_cli import main as cli
from tests.homes import home_env

REPO = Path(__file__).resolve().parents[2]
POLICY = (REPO / "books.yml").read_text()
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _policy(tmp_path: Path, old: str, new: str) -> str:
    assert old in POLICY
    path = tmp_path / "policy.yml"
    path.write_text(POLICY.replace(old, new, 1))
    return str(path)


def _salesforce_policy(tmp_path: Path) -> str:
    return _policy(tmp_path, "kind: local ", "kind: salesforce ")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Each case: (set-up returning extra CLI args and environment, words the one line must hold).
Case = Callable[[Path, dict[str, str]], list[str]]


def bad_policy(tmp: Path, env: dict[str, str]) -> list[str]:
    return ["--policy", _policy(tmp, "working_window_days: 30", "working_window_days: 7")]


def bad_date(tmp: Path, env: dict[str, str]) -> list[str]:
    return ["--as-of", "2025-02-30"]


def missing_credentials(tmp: Path, env: dict[str, str]) -> list[str]:
    for name in ("SF_INSTANCE_URL", "SF_CLIENT_ID", "SF_CLIENT_SECRET"):
        env.pop(name, None)
    return ["--policy", _salesforce_policy(tmp)]


def unreachable_crm(tmp: Path, env: dict[str, str]) -> list[str]:
    env.update(
        SF_INSTANCE_URL=f"https://127.0.0.1:{_closed_port()}",
        SF_CLIENT_ID="id",
        SF_CLIENT_SECRET="secret",
        NO_PROXY="127.0.0.1,localhost",
    )
    return ["--policy", _salesforce_policy(tmp)]


def bad_landing_folder(tmp: Path, env: dict[str, str]) -> list[str]:
    Path(env["BOOKS_CRM_DB"]).touch()
    Path(env["BOOKS_LANDING"]).write_text("not a folder")
    return []


def missing_local_crm(tmp: Path, env: dict[str, str]) -> list[str]:
    return []


CASES: dict[str, tuple[Case, tuple[str, ...]]] = {
    "bad policy": (bad_policy, ("invalid policy", "lifecycle.working_window_days")),
    "bad date": (bad_date, ("invalid date '2025-02-30'",)),
    "missing credentials": (
        missing_credentials,
        ("missing Salesforce credentials", "SF_CLIENT_ID"),
    ),
    "unreachable CRM": (unreachable_crm, ("cannot reach the CRM", "SF_INSTANCE_URL")),
    "bad landing folder": (bad_landing_folder, ("landing folder", "BOOKS_LANDING")),
    "missing local CRM": (missing_local_crm, ("local CRM", "books generate")),
}


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k not in PROXIES and k != "BOOKS_POLICY"}
    return {**values, **home_env(tmp_path)}


def books(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "books_cli.main", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("books") and ": error: " in lines[0]
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("name", CASES)
def test_a_user_error_is_one_line_and_nothing_runs(
    name: str, tmp_path: Path, env: dict[str, str]
) -> None:
    setup, words = CASES[name]
    extra = setup(tmp_path, env)
    args = ["run", *extra] if "--as-of" in extra else ["run", "--as-of", "2025-06-02", *extra]
    result = books(args, env)
    assert_one_line_error(result, *words)
    assert not Path(env["BOOKS_WAREHOUSE"]).exists()  # checked before anything started


@pytest.fixture()
def locked_warehouse(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the warehouse file open for writing (not a books cycle)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "con.execute('create table t as select 1'); print('ready', flush=True); time.sleep(60)",
         env["BOOKS_WAREHOUSE"]],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", [["run", "--as-of", "2025-06-02"], ["demo"]], ids=" ".join)
def test_a_locked_warehouse_is_one_line(
    command: list[str], env: dict[str, str], locked_warehouse: subprocess.Popen[str]
) -> None:
    Path(env["BOOKS_CRM_DB"]).touch()
    result = books(command, env)
    assert_one_line_error(
        result, "warehouse is in use by another process", f"PID {locked_warehouse.pid}"
    )


def _options(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield f"{path} {'/'.join(action.option_strings) or action.dest}", action


def test_every_option_has_help() -> None:
    options = list(_options(cli.build_parser(), "books"))
    assert len(options) > 20  # the walk reaches the subcommands
    missing = [
        name
        for name, action in options
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS
    ]
    assert missing == []
