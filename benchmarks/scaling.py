"""Time per stage against scale (S, M, L) on one log-log chart, and each stage's growth exponent.

`python benchmarks/scaling.py [--results benchmarks/results] [--kind full]` reads the newest
`<date>-<scale>.json` per scale, draws `scaling-<kind>.png` beside them and prints a table with
the fitted exponent per stage between M and L: t ~ n^k, k = log(t_L / t_M) / log(n_L / n_M),
with n = accounts. Target: k <= 1.1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import DAGSTER, STAGES  # noqa: E402
from benchmarks.world import SCALES  # noqa: E402

SCALE_ORDER = ("S", "M", "L", "XL")
MAX_EXPONENT = 1.1


def latest_results(results_dir: Path) -> dict[str, dict[str, Any]]:
    """The newest full-size result per scale (file names start with the ISO date, so sort)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        scale = SCALES.get(data.get("scale", ""))
        if scale is not None and data.get("accounts") == scale.accounts:  # not smoke worlds
            out[scale.name] = data
    return out


# On a replicated raw layer (run.py --replica-of) these stages do other work than at the
# generated scales (every row checked; the write-back only planned), so they are not comparable.
NOT_COMPARABLE_ON_A_REPLICA = ("contracts", "write-back")


def stage_times(result: dict[str, Any], kind: str) -> dict[str, float]:
    """Seconds per stage that ran cleanly in `kind` and did the same work as at every scale,
    plus the Dagster cycle."""
    run = result.get("kinds", {}).get(kind, {})
    skip = NOT_COMPARABLE_ON_A_REPLICA if result.get("world", {}).get("replica") else ()
    times = {
        s["name"]: s["seconds"]
        for s in run.get("stages", [])
        if s["status"] == "ok" and s["name"] not in skip
    }
    dag = run.get("dagster")
    if dag and dag["status"] == "ok":
        times[DAGSTER] = dag["seconds"]
    return times


def exponent(n1: float, t1: float, n2: float, t2: float) -> float:
    """Growth exponent k of t ~ n^k through two points."""
    return math.log(t2 / t1) / math.log(n2 / n1)


def scaling_table(results: dict[str, dict[str, Any]], kind: str) -> list[tuple[str, ...]]:
    """Rows (stage, seconds per scale..., exponent M->L, verdict)."""
    scales = [s for s in SCALE_ORDER if s in results]
    rows = []
    for name in (*STAGES, DAGSTER):
        times = {s: stage_times(results[s], kind).get(name) for s in scales}
        k = None
        if times.get("M") and times.get("L"):
            k = exponent(results["M"]["accounts"], times["M"], results["L"]["accounts"], times["L"])
        verdict = "-" if k is None else ("PASS" if k <= MAX_EXPONENT else "MISS")
        rows.append(
            (
                name,
                *(f"{times[s]:.2f}" if times[s] else "-" for s in scales),
                "-" if k is None else f"{k:.2f}",
                verdict,
            )
        )
    return rows


def draw(results: dict[str, dict[str, Any]], kind: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in (*STAGES, DAGSTER):
        points = [
            (results[s]["accounts"], stage_times(results[s], kind)[name])
            for s in SCALE_ORDER
            if s in results and name in stage_times(results[s], kind)
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("accounts")
    ax.set_ylabel("wall seconds")
    ax.set_title(f"books cycle stages by scale ({kind})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--kind", default="full", choices=["initial", "full", "daily"])
    args = parser.parse_args(argv)
    results = latest_results(args.results)
    if not results:
        parser.error(f"no <date>-<scale>.json results in {args.results}")
    scales = [s for s in SCALE_ORDER if s in results]
    png = draw(results, args.kind, args.results / f"scaling-{args.kind}.png")
    print(f"| stage | {' | '.join(scales)} | exponent M->L | <= {MAX_EXPONENT} |")
    print("|---" * (len(scales) + 3) + "|")
    for row in scaling_table(results, args.kind):
        print("| " + " | ".join(row) + " |")
    print(f"chart: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
