"""Expectations: ``check`` (a finished run, or sweep, judged again by its ``expect:``) and ``course`` (the lessons'
claims as experiments that check themselves)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.options import JsonOption, fail, handles_errors, refuse_existing
from dnncli.cli.output import echo_json, new_console


def _sweep_trials(sweep_dir: Path) -> list:
    """The trials of a sweep directory as comparisons read them: parameters and run directory, from trial.json."""
    import json
    from types import SimpleNamespace

    return [
        SimpleNamespace(params=t["params"], run_dir=Path(t["run_dir"]) if Path(t["run_dir"]).is_dir() else p.parent)
        for p in sorted(sweep_dir.glob("trials/*/trial.json"))
        for t in [json.loads(p.read_text())]
    ]


@handles_errors
def check(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_OR_SWEEP_DIR", help="A finished run, or a sweep directory.")],
    json_: JsonOption = False,
):
    """Judge a finished run by its config's expect: section (or a sweep by its file's): exit 1 when one fails.

    Example: dnn check runs/quickstart-20260101-120000
    """
    from dnncli.cli.views.course import comparison_table, verdict_table
    from dnncli.cli.views.tables import show

    if (run_dir / "sweep.yaml").is_file():
        from dnncli.experiment.expect.compare import judge
        from dnncli.experiment.sweep import read_sweep

        spec = read_sweep(run_dir / "sweep.yaml")
        if not spec.expect:
            fail(f"{run_dir}: its sweep file has no expect: list, so there is nothing to check.")
        verdicts = judge(spec.expect, _sweep_trials(run_dir))
        passed = all(v.passed for v in verdicts)
        if json_:
            echo_json({"sweep_dir": str(run_dir), "passed": passed, "comparisons": [v.to_dict() for v in verdicts]})
        else:
            console = new_console()
            show(console, [comparison_table(console, verdicts)])
    else:
        from dnncli.experiment.expect.check import check_run_dir

        report = check_run_dir(run_dir)
        passed = report.passed
        if json_:
            echo_json(report.to_dict())
        else:
            console = new_console()
            show(console, [verdict_table(console, report)])
    if not passed:
        raise typer.Exit(1)


@handles_errors
def course(
    list_: Annotated[bool, typer.Option("--list", help="List the experiments and their claims (the default).")] = False,
    run: Annotated[
        list[str] | None, typer.Option("--run", metavar="NAME", help="Run this experiment; repeatable.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every experiment of the course.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where the runs go (default runs/course-<time>); new or empty.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", metavar="DIR", help="Draw each experiment's evidence as DIR/NAME.png.")
    ] = None,
    folder: Annotated[Path | None, typer.Option("--dir", help="The course folder (default configs/course).")] = None,
    json_: JsonOption = False,
):
    """The lessons' claims as experiments that check themselves: list them, run one or all, and judge each claim.

    Each experiment is a config or a sweep in configs/course/ with an expect: section; a claim holds when the
    measurement says so beyond the seeds' noise. Exit 1 when one does not.
    Example: dnn course --run dropout --plot figures/
    """
    from datetime import datetime

    from dnncli.cli.views.course import course_table, experiments_table
    from dnncli.cli.views.tables import show
    from dnncli.experiment.course import list_experiments, pick, run_course

    experiments = list_experiments(folder)
    if all_ and run:
        fail("give --run NAME or --all, not both.")
    if not (all_ or run):
        if plot is not None or out is not None:
            fail("--plot and --out apply to a course that runs: give --run NAME or --all.")
        if json_:
            echo_json({"experiments": [e.to_dict() for e in experiments]})
        else:
            console = new_console()
            show(console, [experiments_table(console, experiments)])
        return
    chosen = experiments if all_ else [pick(experiments, name) for name in run]
    if plot is not None:
        if plot.exists() and not plot.is_dir():
            fail(f"--plot {plot}: exists and is not a directory.")
        for e in chosen:
            refuse_existing(plot / f"{e.name}.png", "--plot")
    out = out or Path("runs") / f"course-{datetime.now():%Y%m%d-%H%M%S}"
    if out.exists() and any(out.iterdir()):
        fail(f"--out {out}: not empty; choose a new or empty directory.")
    say = (lambda line: None) if json_ else (lambda line: typer.echo(line, err=True))
    report = run_course(chosen, out, str(folder or ""), say)
    if plot is not None:
        from dnncli.experiment.course_plot import plot_experiment

        plot.mkdir(parents=True, exist_ok=True)
        for result in report.experiments:
            plot_experiment(result, plot / f"{result.experiment.name}.png")
    if json_:
        echo_json(report.to_dict())
    else:
        console = new_console(file=sys.stdout)
        show(console, course_table(console, report))
        if plot is not None:
            typer.echo(f"Figures: {plot}/<experiment>.png")
    if not report.passed:
        raise typer.Exit(1)
