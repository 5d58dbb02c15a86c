"""``dnn train``: a run from a config (or resumed), its display chosen for the terminal, stopped cleanly on a signal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.completion import complete_run_dir
from dnncli.cli.options import (
    EXIT_NONFINITE,
    FailOnAnyOption,
    FailOnOption,
    SetOption,
    ThreadsOption,
    fail,
    fail_on_flags,
    gate,
    handles_errors,
    threads_set,
)
from dnncli.cli.output import new_console
from dnncli.cli.signals import exit_code, stop_on_signals
from dnncli.errors import plural


@handles_errors
def train(
    config: Annotated[Path | None, typer.Argument(help="The experiment's YAML config.", show_default=False)] = None,
    set_: SetOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Run directory (default runs/<name>-<time>): new or empty, or a start that never reached its first"
            " checkpoint (taken over); a run there, or other files (see --force), are refused.",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Train this many epochs in all.")] = None,
    init_weights: Annotated[
        Path | None, typer.Option("--init-weights", help="Start from this NPZ weights file (a warm start).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Continue the interrupted run in this directory.", autocompletion=complete_run_dir
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final result.")] = False,
    fail_on: FailOnOption = None,
    fail_on_any: FailOnAnyOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="With --resume: resume although config.yaml was edited since the start. With --out DIR: write the"
            " run into DIR although it holds other files (never over a file of a run's own names, never over a run).",
        ),
    ] = False,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard", help="Write TensorBoard logs to RUN_DIR/tensorboard/ (training.tensorboard: true)."
        ),
    ] = False,
    threads: ThreadsOption = None,
):
    """Train a model and write a run directory.

    Example: dnn train configs/quickstart.yaml --set training.epochs=20 --out runs/try1
    """
    from dnncli.cli.views.training import LiveReporter, PlainReporter
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.run import TrainingRun

    if resume is None and config is None:
        fail("give a CONFIG to train, or --resume RUN_DIR.")
    fail_on_set, fail_on_any_set = fail_on_flags(fail_on), fail_on_flags(fail_on_any, "--fail-on-any")
    if resume is not None and (config is not None or set_ or out or init_weights or tensorboard):
        fail(
            "--resume takes the run's own config; it cannot be combined with CONFIG, --set, --out, --init-weights"
            " or --tensorboard (a run that logs to TensorBoard goes on logging when resumed)."
        )
    if quiet:
        reporter = PlainReporter(quiet=True)
    elif sys.stdout.isatty():
        reporter = LiveReporter(new_console())
    else:
        reporter = PlainReporter()
    if resume is not None:
        run = TrainingRun.open(resume, epochs=epochs, reporter=reporter, force=force, threads=threads)
    else:
        tb = ["training.tensorboard=true"] if tensorboard else []
        cfg = config_mod.load(config, [*(set_ or []), *tb, *threads_set(threads)])
        if force and out is None:
            fail("--force applies with --out DIR (train beside other files there) or with --resume RUN_DIR.")
        run = TrainingRun.create(cfg, out=out, init_weights=init_weights, epochs=epochs, reporter=reporter, force=force)

    with stop_on_signals(run.trainer.request_stop, run.run_dir) as stopped_by:
        result = run.train()
    if result.status == "interrupted":
        raise typer.Exit(exit_code(stopped_by))
    checked = _check_expectations(run.config.resolved.get("expect"), result)
    if result.status == "nonfinite" and not (checked and checked.status_expected):
        raise typer.Exit(EXIT_NONFINITE)
    gate(result.flags, fail_on_set, fail_on_any_set, of_run=str(run.run_dir))
    if checked is not None and not checked.passed:
        typer.echo(
            f"expect: {len(checked.failed)} of {plural(len(checked.verdicts), 'expectation')} failed (the run is kept"
            f" in {run.run_dir}; dnn check {run.run_dir} judges it again).",
            err=True,
        )
        raise typer.Exit(1)


def _check_expectations(expect: dict | None, result):
    """The config's ``expect:`` judged on the run just trained, its verdict table shown; None without one."""
    if not expect:
        return None
    from dnncli.cli.views.course import verdict_table
    from dnncli.cli.views.tables import show
    from dnncli.experiment.expect.check import check_outcome
    from dnncli.experiment.expect.measures import Outcome

    report = check_outcome(expect, Outcome(result.run_dir, result))
    console = new_console()
    show(console, [verdict_table(console, report)])
    return report
