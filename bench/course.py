"""The whole course folder (configs/course/) as a benchmark: every experiment run as `dnn course --all` runs it, one
after the other in this process, with its training runs, its seconds and whether its claims held; then the total.

    python bench/course.py [--plot DIR] [--json] [--keep DIR]

Exit code 1 when a claim does not hold, as `dnn course --all`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plot", type=Path, help="Draw each experiment's figure into this folder.")
    parser.add_argument("--keep", type=Path, help="Keep the runs in this (new or empty) folder.")
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    args = parser.parse_args()

    from dnncli.experiment.course import list_experiments, run_course
    from dnncli.strict_json import dumps

    experiments = list_experiments(ROOT / "configs" / "course")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "course"
        started = time.perf_counter()
        report = run_course(experiments, out, str(ROOT / "configs" / "course"))
        wall = time.perf_counter() - started
        if args.plot is not None:
            from dnncli.experiment.course_plot import plot_experiment

            args.plot.mkdir(parents=True, exist_ok=True)
            for result in report.experiments:
                plot_experiment(result, args.plot / f"{result.experiment.name}.png")
    if args.json:
        print(dumps(report.to_dict() | {"wall_seconds": wall}, indent=2))
        return 0 if report.passed else 1
    width = max(len(e.experiment.name) for e in report.experiments)
    print(f"{'experiment':<{width}}  {'runs':>4}  {'seconds':>7}  claims")
    for e in report.experiments:
        verdicts = e.check.verdicts if e.check else e.comparisons
        held = sum(v.passed for v in verdicts)
        print(f"{e.experiment.name:<{width}}  {e.runs:>4}  {e.seconds:>7.1f}  {held} of {len(verdicts)} hold")
    runs = sum(e.runs for e in report.experiments)
    verdict = "every claim holds" if report.passed else "NOT ALL HOLD"
    print(f"{'all':<{width}}  {runs:>4}  {report.seconds:>7.1f}  {verdict}")
    print(f"({len(report.experiments)} experiments on {_cores()} cores; wall time with start-up {wall:.1f} s)")
    return 0 if report.passed else 1


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
