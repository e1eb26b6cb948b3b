"""The lab's HTML report opens in headless Chromium with every chart rendered."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from simulation.arms import Arm
from simulation.lab import simulate
from simulation.params import load_params
from simulation.report import write_report


def test_every_chart_renders_in_headless_chromium(small_twin, hand_reference, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed for this test"
    sim = simulate(
        small_twin, [Arm("static", None)], tmp_path / "run", days=14, params=load_params(),
        reference_policy=Path("books.yml"), reference=hand_reference,
    )  # fmt: skip
    report = write_report(sim, tmp_path / "report.html")
    kpis = {r[3] for r in sim.arms[0].rows if r[4] is not None}
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}",  # its own profile: runs in parallel
         "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == len(kpis) >= 10
    assert all('data-rendered="true"' in img for img in images)
