"""While a cycle runs, what dbt writes to stdout, what Dagster's console logger writes to stderr
and library logging go to the log file, not the console (with -v: both); the progress printer
keeps the console."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from books_cli.console import detail_to_log
from books_cli.progress import ProgressPrinter


def _a_noisy_run(progress: ProgressPrinter) -> None:
    print("1 of 246 START sql table model staging.stg_salesforce__accounts .... [RUN]")
    sys.stderr.write("2025-06-02 - dagster - DEBUG - books_cycle - STEP_START\n")
    logging.getLogger("ingest.files").warning("2 bad rows held back")
    logging.getLogger("ingest.files").info("loaded intent_2025-04-28.csv")
    progress("step dbt_models done in 84.0s, 69 assets")


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_detail_goes_to_the_log_and_progress_to_the_console(
    verbose: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "books-run.log"
    progress = ProgressPrinter()  # made before the switch, as the CLI does
    with detail_to_log(log, verbose=verbose) as detail:
        _a_noisy_run(progress)
    print(detail.footer())
    out, err = capsys.readouterr()
    text = log.read_text()
    for line in (
        "1 of 246 START",
        " - dagster - DEBUG - ",
        "2 bad rows held back",
        "loaded intent",
    ):
        assert line in text
        assert (line in out + err) is verbose
    assert "step dbt_models done in 84.0s" in err
    assert out.splitlines()[-1] == f"log:       {log}  (1 warning or error line)"
    assert sys.stdout is not None and "START" not in log.name  # streams are restored
    print("after")
    assert capsys.readouterr().out == "after\n"
