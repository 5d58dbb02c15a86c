"""Tuning: ``sweep`` (Ray Tune), ``compare``, ``lr-find``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.completion import complete_run_or_sweep
from dnncli.cli.options import (
    JsonOption,
    SetOption,
    ThreadsOption,
    fail,
    handles_errors,
    refuse_existing,
    threads_set,
)
from dnncli.cli.output import echo_json, emit, new_console


@handles_errors
def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_OR_SWEEP_DIR...", help="Run directories, or sweeps.", autocompletion=complete_run_or_sweep
        ),
    ],
    metric: Annotated[str | None, typer.Option("--metric", help="A logged column (default val_loss, or loss).")] = None,
    x: Annotated[str, typer.Option("--x", help="The plot's axis: epoch, step, samples or seconds.")] = "epoch",
    plot: Annotated[Path | None, typer.Option("--plot", help="Overlay the runs' curves in this PNG.")] = None,
    json_: JsonOption = False,
):
    """Runs side by side: the config keys that differ, final and best metric, epochs, time; curves overlaid.

    Example: dnn compare runs/sgd runs/adam --plot curves.png --x samples
    """
    from dnncli.experiment.compare import compare as compare_runs
    from dnncli.experiment.compare import plot_compare

    refuse_existing(plot, "--plot")
    report = compare_runs(runs, metric or ("loss" if x != "epoch" else None))
    if plot is not None:
        plot_compare(report, plot, x)
    from dnncli.cli.views.tuning import compare_table

    emit(report, json_, lambda console, r: [compare_table(console, r)])
    if plot is not None and not json_:
        typer.echo(f"Wrote {plot}")


@handles_errors
def sweep(
    sweep_file: Annotated[Path | None, typer.Argument(metavar="SWEEP.yaml", help="The sweep file.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Sweep directory (default runs/sweeps/NAME-TIME).")] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Trials at once (default: the CPUs / resources_per_trial's cpu)."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Join the Ray cluster at HOST:PORT, in its authentication mode (a token from RAY_AUTH_TOKEN,"
            " RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).",
        ),
    ] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish the sweep in this directory.")] = None,
    json_: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final result.")] = False,
):
    """Search hyperparameters on Ray Tune: grid, random or TPE (Optuna), with ASHA early stopping.

    Each trial is a run directory under DIR/trials; DIR/results.csv and DIR/best.yaml at the end.
    Example: dnn sweep configs/sweeps/lr_batch_grid.yaml --workers 2
    """
    from datetime import datetime

    from dnncli.cli.views.tables import show
    from dnncli.cli.views.tuning import SweepView, sweep_table
    from dnncli.experiment.sweep import read_sweep
    from dnncli.experiment.sweep import sweep as run_sweep

    if (sweep_file is None) == (resume is None):
        fail("give a SWEEP.yaml, or --resume DIR.")
    if resume is not None:
        out, spec = resume, read_sweep(Path(resume) / "sweep.yaml") if (Path(resume) / "sweep.yaml").exists() else None
        if spec is None:
            fail(f"--resume {resume}: not a sweep directory (no sweep.yaml).")
    else:
        spec = read_sweep(sweep_file)
        # under runs/, so that tensorboard --logdir runs/ and dnn compare runs/... see sweeps beside runs
        out = out or Path("runs") / "sweeps" / f"{sweep_file.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    console = new_console(file=sys.stdout) if sys.stdout.isatty() and not json_ else None
    view = SweepView(spec.metric, spec.mode, console, quiet=quiet or json_)
    try:
        report = run_sweep(sweep_file, out, workers=workers, address=address, view=view, resume=resume is not None)
    finally:
        view.close()
    # the sweep file's expect: judged on the trials' run directories (None without one)
    verdicts = _judge(spec, report)
    if json_:
        expect = {} if verdicts is None else {"comparisons": [v.to_dict() for v in verdicts]}
        echo_json(report.to_dict() | expect)
    else:
        console = new_console()
        show(console, [sweep_table(console, report)])
        if report.best is not None:
            typer.echo(
                f"Best: {report.best.run_dir} ({spec.metric} {report.best.metric:.6g});"
                f" its config: {Path(out) / 'best.yaml'}; every trial: {Path(out) / 'results.csv'}"
            )
        if verdicts is not None:
            from dnncli.cli.views.course import comparison_table

            show(console, [comparison_table(console, verdicts)])
    if verdicts is not None and not all(v.passed for v in verdicts):
        failed = sum(not v.passed for v in verdicts)
        typer.echo(
            f"expect: {failed} of {len(verdicts)} comparisons failed (dnn check {out} judges them again).", err=True
        )
        raise typer.Exit(1)


def _judge(spec, report):
    if not spec.expect:
        return None
    from dnncli.experiment.expect.compare import judge

    return judge(spec.expect, report.trials)


@handles_errors
def lr_find(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    min_lr: Annotated[float, typer.Option("--min", help="The first learning rate.")] = 1e-7,
    max_lr: Annotated[float, typer.Option("--max", help="The last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", min=5, help="Steps from --min to --max, exponentially.")] = 100,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the loss against the rate into this PNG.")] = None,
    set_: SetOption = None,
    json_: JsonOption = False,
    threads: ThreadsOption = None,
):
    """The learning-rate range test: the loss as the rate grows exponentially, and the rate to use.

    Trains from the config's initial weights; saves no weights and makes no run directory.
    Example: dnn lr-find configs/quickstart.yaml --plot lr.png
    """
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.lrfind import lr_find as range_test
    from dnncli.experiment.lrfind import plot_range_test

    refuse_existing(plot, "--plot")
    report = range_test(config_mod.load(config, [*(set_ or []), *threads_set(threads)]), min_lr, max_lr, steps)
    if plot is not None:
        plot_range_test(report, plot)
    if json_:
        echo_json(report)
        return
    s = report["suggestions"]
    typer.echo(f"{report['config']}: {report['steps']} steps from {min_lr:g} to {max_lr:g}; {report['stopped']}.")
    typer.echo(f"Lowest smoothed loss at rate {report['min_loss_rate']:.3g}.")
    typer.echo(f"Suggested: {s['min_over_10']:.3g} (the minimum / 10); steepest descent at {s['steepest']:.3g}.")
    typer.echo(f"Use: {report['command']}")
    if plot is not None:
        typer.echo(f"Wrote {plot}")
