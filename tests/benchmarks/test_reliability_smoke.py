"""Smoke test of benchmarks/reliability.py at a tiny size (no kills: each costs a cycle; the kill
scenario's own test is tests/e2e/test_kill_recovery.py): it prints a row per scenario, and each
row says the fault was put in and noticed, with nothing lost or doubled."""

from __future__ import annotations

import pytest

from benchmarks import reliability

pytestmark = pytest.mark.slow  # three small fault scenarios: seconds to a minute


def test_the_script_prints_a_row_per_fault_with_nothing_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    only = ["drops-Bulk 2.0", "bad-rows", "big-value"]
    code = reliability.main(["--accounts", "200", "--kills", "0", "--only", *only])
    table = capsys.readouterr().out.strip().splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:5] == ["fault", "injected", "lost", "doubled", "detected"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert len(rows) == len(only)
    for fault, injected, lost, doubled, detected, *_ in rows:
        assert int(injected) > 0, fault
        assert (lost, doubled) == ("0", "0"), fault
        assert int(detected) == int(injected), f"{fault}: {detected} of {injected} noticed"
    assert code == 0
