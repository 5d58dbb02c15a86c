"""The diagnosis: ``inspect-gradients`` (with ``--try-advice`` and ``--write-config``), ``gradcheck``, ``bench``."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dnncli.cli.completion import complete_config_or_run
from dnncli.cli.options import (
    FailOnAnyOption,
    FailOnOption,
    JsonOption,
    SetOption,
    ThreadsOption,
    fail,
    fail_on_flags,
    gate,
    handles_errors,
    threads_set,
)
from dnncli.cli.output import echo_json, emit, new_console

if TYPE_CHECKING:
    from dnncli.diagnostics.inspection_report import InspectionReport


@handles_errors
def inspect_gradients(
    target: Annotated[
        Path,
        typer.Argument(
            metavar="CONFIG|RUN_DIR", help="A config to probe, or a run to read.", autocompletion=complete_config_or_run
        ),
    ],
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Training steps to record (default: one epoch).")
    ] = None,
    every: Annotated[int | None, typer.Option("--every", min=1, help="Record full statistics every K steps.")] = None,
    set_: SetOption = None,
    try_advice: Annotated[
        bool,
        typer.Option("--try-advice", help="Run the same steps again per advice item, its overrides applied."),
    ] = False,
    write_config: Annotated[
        Path | None,
        typer.Option(
            "--write-config",
            metavar="FILE",
            help="Write the config with the recommended fix applied (implies --try-advice).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="With --write-config: replace an existing file.")] = False,
    plain: Annotated[bool, typer.Option("--plain", help="A plain text table (the default when piped).")] = False,
    json_: JsonOption = False,
    fail_on: FailOnOption = None,
    fail_on_any: FailOnAnyOption = None,
    threads: ThreadsOption = None,
):
    """Is any layer's gradient vanishing, exploding, collapsed, dead, saturated or stalled? Why, and what to change.

    Example: dnn inspect-gradients configs/vanishing_sigmoid.yaml --steps 50 --try-advice --write-config fixed.yaml
    """
    from dnncli.experiment import config as config_mod
    from dnncli.experiment import cure
    from dnncli.experiment.inspection import inspect_config, inspect_run, probe_steps
    from dnncli.files import check_target

    fail_on_set, fail_on_any_set = fail_on_flags(fail_on), fail_on_flags(fail_on_any, "--fail-on-any")
    try_advice = try_advice or write_config is not None
    if write_config is not None:  # before the work: an existing file unless --force, and never a FIFO or directory
        check_target(write_config, force, "--write-config")
    if target.is_dir():
        if set_ or every:
            fail("--every and --set apply to a CONFIG, not to a run directory (its config is the run's own).")
        report = inspect_run(target)
        cfg = config_mod.load(target / "config.yaml", threads_set(threads)) if try_advice else None
        probe = steps or probe_steps(report, cfg) if try_advice else None
        baseline = inspect_config(cfg, steps=probe) if try_advice else report
    else:
        cfg = config_mod.load(target, [*(set_ or []), *threads_set(threads)])
        report = baseline = inspect_config(cfg, steps=steps, every=every)
        probe = steps
    if try_advice:
        tried = cure.try_advice(cfg, baseline, report.advice, steps=probe, every=every)
        report = replace(report, tried=tried, tried_steps=baseline.steps_planned)
        if write_config is not None:
            written = _write_fix(cfg, report, cure.recommended(tried), write_config, force, target, say=json_)
            report = replace(report, write_config=True, written=written)
    if json_:
        echo_json(report.to_dict())
    elif plain or not sys.stdout.isatty():
        from dnncli.cli.views.inspection import inspection_plain, try_advice_plain

        for line in inspection_plain(report) + try_advice_plain(report):
            typer.echo(line)
    else:
        from dnncli.cli.views.inspection import inspection_view
        from dnncli.cli.views.tables import show

        console = new_console()
        show(console, inspection_view(console, report))
    gate([f.to_dict() for layer in report.layers for f in layer.flag_info], fail_on_set, fail_on_any_set)


def _write_fix(
    cfg, report: InspectionReport, best: dict | None, out: Path, force: bool, target: Path, say: bool
) -> str | None:
    """Write the recommended fix; ``say``: tell stderr (the views say it under the table of what was tried)."""
    from dnncli.experiment import cure

    if best is None:
        if say:
            typer.echo(f"--write-config: no advice item helped on these steps; {out} not written.", err=True)
        return None
    numbers = [int(k) for k in best["advice"].split("+")]
    items = [report.advice[k - 1] for k in numbers]
    change = "; ".join(i.get("change") or " ".join(i["set"]) for i in items)
    path = cure.write_fixed_config(cfg, {"set": best["set"], "change": change}, out, force, str(target))
    if say:
        typer.echo(f"Wrote {path}: {change}. Train it with: dnn train {path}", err=True)
    return str(path)


@handles_errors
def gradcheck(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples of the training data to check on.")] = 4,
    entries: Annotated[
        int, typer.Option("--entries", min=1, help="Entries checked per weight, chosen at random.")
    ] = 20,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest relative error that passes.")] = 1e-6,
    set_: SetOption = None,
    json_: JsonOption = False,
    threads: ThreadsOption = None,
):
    """Check the backward pass of your architecture and loss by central differences, in float64.

    Exit code 0 when every layer and parameter passes, 1 when any fails.
    Example: dnn gradcheck configs/binary_batchnorm.yaml --samples 8
    """
    from dnncli.cli.views.inspection import gradcheck_rows, gradcheck_title
    from dnncli.cli.views.tables import fitted_table, show
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.inspection import gradcheck_config

    report = gradcheck_config(
        config_mod.load(config, [*(set_ or []), *threads_set(threads)]), samples, entries, tolerance
    )
    if json_:
        echo_json(report)
    else:
        console = new_console()
        cols, rows = gradcheck_rows(report)
        show(console, [fitted_table(console, cols, rows, console.width, title=gradcheck_title(report))])
        typer.echo("All gradients match." if report["passed"] else "Some gradients do not match.")
    if not report["passed"]:
        raise typer.Exit(1)


@handles_errors
def bench(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps to time (after 5 untimed).")] = 50,
    set_: SetOption = None,
    json_: JsonOption = False,
    threads: ThreadsOption = None,
):
    """Samples/s of your config, its GFLOP/s against this machine's matrix-product peak, and where the time goes;
    the step timed at each BLAS thread count, and the count chosen.

    Example: dnn bench configs/fashion_mnist.yaml --steps 100
    """
    import io

    from rich.console import Console

    from dnncli.cli.views.inspection import bench_view
    from dnncli.cli.views.training import LiveReporter
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.inspection import bench_config

    # the live display is part of a step's cost: drawn, as in training, to a terminal that is not shown
    reporter = LiveReporter(Console(file=io.StringIO(), force_terminal=True, width=120, height=40))
    cfg = config_mod.load(config, [*(set_ or []), *threads_set(threads)])
    emit(bench_config(cfg, reporter, steps=steps), json_, bench_view)
