"""``dnn doctor``: the checks a good practitioner runs before training, with verdicts and the fixes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.options import JsonOption, SetOption, ThreadsOption, handles_errors, threads_set
from dnncli.cli.output import emit


@handles_errors
def doctor(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    set_: SetOption = None,
    write_config: Annotated[
        Path | None,
        typer.Option("--write-config", metavar="FILE", help="Write the config with every fix applied."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="With --write-config: replace an existing file.")] = False,
    json_: JsonOption = False,
    threads: ThreadsOption = None,
):
    """Check a config before training: its data, the loss at the start, one batch overfit, the inputs zeroed, the
    gradients of the first epoch, the learning rate, the batch size against the gradient noise scale, and the
    backward pass; each with a verdict (ok, warn, fail) and its fix as --set overrides.

    Exit code 0 when no check fails, 1 when one does (a CI gate). Writes nothing but --write-config's file.
    Example: dnn doctor configs/iris.yaml --write-config fixed.yaml
    """
    from dnncli.cli.views.doctor import doctor_view
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.doctor import doctor as run_doctor
    from dnncli.experiment.doctor_report import write_fixed
    from dnncli.files import check_target

    if write_config is not None:  # before the work: an existing file unless --force, never a FIFO or directory
        check_target(write_config, force, "--write-config")
    cfg = config_mod.load(config, [*(set_ or []), *threads_set(threads)])
    report = run_doctor(cfg)
    if write_config is not None and write_fixed(cfg, report, write_config, force) is None and json_:
        typer.echo(f"--write-config: no check has a fix; {write_config} not written.", err=True)
    emit(report, json_, doctor_view)
    if report.failed:
        raise typer.Exit(1)
