"""The ``dnn`` command. Thin: parse options, call the core, show the result.

User errors (``DnnError``) become one line on standard error and exit code 2;
``--debug`` shows the traceback instead. A non-finite loss exits with 3, an
interrupted training with 130. Heavy modules are imported inside commands so
that ``dnn --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

EXIT_USAGE = 2
EXIT_NONFINITE = 3

app = typer.Typer(
    name="dnn",
    help=(
        "Train dense neural networks from YAML configs, on a NumPy core.\n\n"
        "Example: dnn train configs/quickstart.yaml --set training.epochs=5"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # every command inherits it
)
_state = {"debug": False}

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY.PATH=VALUE",
        help="Override a config value (YAML), e.g. optimizer.learning_rate=0.01; repeatable.",
    ),
]


def _fail(message: str, code: int = EXIT_USAGE):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _numpy_quiet(quiet: bool):
    """NumPy's RuntimeWarning lines ("overflow encountered in matmul") off, unless --debug: every result is checked
    for NaN and infinity where it is made, and the tool says where and what to change; the raw line says neither."""
    if not quiet:
        yield
        return
    import warnings

    import numpy as np

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def handles_errors(fn):
    """Turn DnnError into one line and exit code 2 (a traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from dnncli.errors import DnnError, warnings_as_lines

        try:
            with warnings_as_lines(lambda line: typer.echo(line, err=True)), _numpy_quiet(not _state["debug"]):
                return fn(*args, **kwargs)
        except DnnError as err:
            if _state["debug"]:
                raise
            _fail(str(err))

    return wrapper


def _print_version(value: bool):
    if value:
        from dnncli import __version__

        typer.echo(f"dnn {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print dnn's version and exit.")
    ] = False,
):
    """Train dense neural networks from YAML configs, on a NumPy core."""
    _state["debug"] = debug


def _console():
    """A terminal's own width; piped, wide enough that no table is fitted to a guess of 80 columns."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=1000, no_color=True, highlight=False, soft_wrap=True)


def _echo_json(obj) -> None:
    """Strict JSON: NaN and infinities become null (JavaScript, Go and serde refuse the bare tokens)."""
    import json

    typer.echo(json.dumps(_strict(obj), indent=2, allow_nan=False))


def _strict(value):
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return _strict(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _emit(report: dict, json_: bool, view) -> None:
    """A command's result: strict JSON, or ``view(console, report)``'s parts shown whole."""
    if json_:
        _echo_json(report)
        return
    from dnncli.cli.views.tables import show

    console = _console()
    show(console, view(console, report))


def _fail_on(text: str | None, option: str = "--fail-on") -> set[str]:
    """The flags named by ``--fail-on`` or ``--fail-on-any`` (a comma list, or ``any``)."""
    from dnncli.diagnostics.rules import FLAGS
    from dnncli.errors import suggest

    if text is None:
        return set()
    names = {n.strip() for n in text.split(",") if n.strip()}
    if "any" in names:
        return set(FLAGS)
    for name in names:
        if name not in FLAGS:
            _fail(f"{option}: unknown flag {name!r}.{suggest(name, FLAGS)} Flags: {', '.join(FLAGS)}, or any.")
    if not names:
        _fail(f"{option} needs flag names: {', '.join(FLAGS)}, or any.")
    return names


FailOnOption = Annotated[
    str | None,
    typer.Option(
        "--fail-on",
        metavar="FLAGS",
        help="Exit 1 if any of these flags is still raised at the end (comma list of vanishing, exploding,"
        " collapsed, dead, saturated, stalled, nonfinite; or any): a CI gate. A flag that cleared does not count.",
    ),
]
FailOnAnyOption = Annotated[
    str | None,
    typer.Option(
        "--fail-on-any",
        metavar="FLAGS",
        help="Exit 1 if any of these flags was raised at any time, transient ones at initialization included.",
    ),
]


@app.command()
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
        Path | None, typer.Option("--resume", help="Continue the interrupted run in this directory.")
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
):
    """Train a model and write a run directory.

    Example: dnn train configs/quickstart.yaml --set training.epochs=20 --out runs/try1
    """
    import signal

    from dnncli.cli.views.training import LiveReporter, PlainReporter
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.run import TrainingRun

    if resume is None and config is None:
        _fail("give a CONFIG to train, or --resume RUN_DIR.")
    gate, gate_any = _fail_on(fail_on), _fail_on(fail_on_any, "--fail-on-any")
    if resume is not None and (config is not None or set_ or out or init_weights or tensorboard):
        _fail(
            "--resume takes the run's own config; it cannot be combined with CONFIG, --set, --out, --init-weights"
            " or --tensorboard (a run that logs to TensorBoard goes on logging when resumed)."
        )
    if quiet:
        reporter = PlainReporter(quiet=True)
    elif sys.stdout.isatty():
        reporter = LiveReporter(_console())
    else:
        reporter = PlainReporter()
    if resume is not None:
        run = TrainingRun.open(resume, epochs=epochs, reporter=reporter, force=force)
    else:
        cfg = config_mod.load(config, [*(set_ or []), *(["training.tensorboard=true"] if tensorboard else [])])
        if force and out is None:
            _fail("--force applies with --out DIR (train beside other files there) or with --resume RUN_DIR.")
        run = TrainingRun.create(cfg, out=out, init_weights=init_weights, epochs=epochs, reporter=reporter, force=force)

    # Ctrl-C (SIGINT) and SIGTERM (sent by timeout, SLURM, Kubernetes, Ray to stop a job): finish the batch,
    # write the checkpoint, print the resume command, exit 128 + the signal; a second one stops at once
    stopped_by: list[int] = []

    def on_signal(signum, frame):
        if stopped_by:
            raise KeyboardInterrupt
        stopped_by.append(signum)
        run.trainer.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run.train()
    except KeyboardInterrupt:
        typer.echo(f"Stopped at once; resume from the last checkpoint with: dnn train --resume {run.run_dir}", err=True)
        raise typer.Exit(128 + (stopped_by[-1] if stopped_by else signal.SIGINT)) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if result.status == "interrupted":
        raise typer.Exit(128 + (stopped_by[0] if stopped_by else signal.SIGINT))
    if result.status == "nonfinite":
        raise typer.Exit(EXIT_NONFINITE)
    active = {f["flag"] for f in result.flags if f["active_at_end"] and not f["transient"]}
    ever = {f["flag"] for f in result.flags}
    for option, hit in (("--fail-on", active & gate), ("--fail-on-any", ever & gate_any)):
        if hit:
            what = "active at the end of the run" if option == "--fail-on" else "raised during the run"
            typer.echo(f"{option}: {what}: {', '.join(sorted(hit))} (the run is kept in {run.run_dir}).", err=True)
            raise typer.Exit(1)


@app.command("eval")
@handles_errors
def eval_(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dnn train.")],
    data: Annotated[Path | None, typer.Option("--data", help="Evaluate on this .npz (arrays x and y) instead.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Loss, metrics and (for classification) a confusion matrix on held-out data.

    Example: dnn eval runs/quickstart-20260101-120000 --json
    """
    from dnncli.cli.views.results import eval_tables
    from dnncli.experiment.evaluate import evaluate_run

    _emit(evaluate_run(run_dir, data), json_, eval_tables)


@app.command()
@handles_errors
def summary(
    config: Annotated[Path, typer.Argument(help="A YAML config, or a run directory.")],
    set_: SetOption = None,
):
    """The model as Keras's summary() shows it.

    Example: dnn summary configs/fashion_mnist.yaml
    """
    from dnncli.cli.views.results import summary_lines, summary_table
    from dnncli.cli.views.tables import show
    from dnncli.experiment import config as config_mod

    cfg = config_mod.load(config_mod.find_config(config), set_ or [], check_paths=False)
    s = cfg.build_model().summary()
    console = _console()
    show(console, [summary_table(console, s, f'Model: "{cfg.name}"')])
    for line in summary_lines(s):
        console.print(line)


@app.command()
@handles_errors
def validate(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    set_: SetOption = None,
):
    """Check a config and print it resolved, every default filled in (itself a valid config).

    Example: dnn validate configs/quickstart.yaml --set optimizer.name=sgd > resolved.yaml
    """
    from dnncli.experiment import config as config_mod

    cfg = config_mod.load(config, set_ or [])
    typer.echo(cfg.to_yaml(), nl=False)


@app.command()
@handles_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dnn train.")],
    input_: Annotated[Path, typer.Argument(metavar="INPUT", help="Inputs: .csv (numbers, optional header) or .npy.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the CSV here instead of standard output.")] = None,
):
    """Predictions for new data, as CSV (class and probabilities, or values).

    Example: dnn predict runs/quickstart-20260101-120000 new_points.csv --out predictions.csv
    """
    import csv
    import io

    from dnncli.experiment.evaluate import predict_run
    from dnncli.experiment.rundir import create_new_file

    columns, rows = predict_run(run_dir, input_)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    text = buf.getvalue()
    if out is None:
        typer.echo(text, nl=False)
    else:
        create_new_file(out, text)
        typer.echo(f"Wrote {len(rows)} prediction{'s' if len(rows) != 1 else ''} to {out}", err=True)


@app.command("inspect-gradients")
@handles_errors
def inspect_gradients(
    target: Annotated[Path, typer.Argument(metavar="CONFIG|RUN_DIR", help="A config to probe, or a run to read.")],
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
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    fail_on: FailOnOption = None,
    fail_on_any: FailOnAnyOption = None,
):
    """Is any layer's gradient vanishing, exploding, collapsed, dead, saturated or stalled? Why, and what to change.

    Example: dnn inspect-gradients configs/vanishing_sigmoid.yaml --steps 50 --try-advice --write-config fixed.yaml
    """
    from dnncli.experiment import config as config_mod
    from dnncli.experiment import cure
    from dnncli.experiment.inspection import inspect_config, inspect_run, probe_steps
    from dnncli.files import check_target

    gate, gate_any = _fail_on(fail_on), _fail_on(fail_on_any, "--fail-on-any")
    try_advice = try_advice or write_config is not None
    if write_config is not None:  # before the work: an existing file unless --force, and never a FIFO or directory
        check_target(write_config, force, "--write-config")
    if target.is_dir():
        if set_ or every:
            _fail("--every and --set apply to a CONFIG, not to a run directory (its config is the run's own).")
        report = inspect_run(target)
        cfg = config_mod.load(target / "config.yaml") if try_advice else None
        probe = steps or probe_steps(report, cfg) if try_advice else None
        baseline = inspect_config(cfg, steps=probe) if try_advice else report
    else:
        cfg = config_mod.load(target, set_ or [])
        report = baseline = inspect_config(cfg, steps=steps, every=every)
        probe = steps
    if try_advice:
        report["tried"] = cure.try_advice(cfg, baseline, report["advice"], steps=probe, every=every)
        report["tried_steps"] = baseline["steps_planned"]
        best = cure.recommended(report["tried"])
        if write_config is not None:
            report["written"] = _write_fix(cfg, report, best, write_config, force, target, say=json_)
    if json_:
        _echo_json(report)
    elif plain or not sys.stdout.isatty():
        from dnncli.cli.views.inspection import inspection_plain, try_advice_plain

        for line in inspection_plain(report) + try_advice_plain(report):
            typer.echo(line)
    else:
        from dnncli.cli.views.inspection import inspection_view
        from dnncli.cli.views.tables import show

        console = _console()
        show(console, inspection_view(console, report))
    _gate(report["layers"], gate, gate_any)


def _write_fix(cfg, report: dict, best: dict | None, out: Path, force: bool, target: Path, say: bool) -> str | None:
    """Write the recommended fix; ``say``: tell stderr (the views say it under the table of what was tried)."""
    from dnncli.experiment import cure

    if best is None:
        if say:
            typer.echo(f"--write-config: no advice item helped on these steps; {out} not written.", err=True)
        return None
    numbers = [int(k) for k in best["advice"].split("+")]
    items = [report["advice"][k - 1] for k in numbers]
    change = "; ".join(i.get("change") or " ".join(i["set"]) for i in items)
    path = cure.write_fixed_config(cfg, {"set": best["set"], "change": change}, out, force, str(target))
    if say:
        typer.echo(f"Wrote {path}: {change}. Train it with: dnn train {path}", err=True)
    return str(path)


def _gate(layers: list[dict], gate: set[str], gate_any: set[str]) -> None:
    """--fail-on: the flags still active at the end; --fail-on-any: every flag ever raised, transient ones too."""
    active = {f["flag"] for layer in layers for f in layer["flag_info"] if f["active_at_end"] and not f["transient"]}
    ever = {f["flag"] for layer in layers for f in layer["flag_info"]}
    for option, hit in (("--fail-on", active & gate), ("--fail-on-any", ever & gate_any)):
        if hit:
            what = "active at the end" if option == "--fail-on" else "raised"
            typer.echo(f"{option}: {what}: {', '.join(sorted(hit))}", err=True)
            raise typer.Exit(1)


@app.command()
@handles_errors
def gradcheck(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples of the training data to check on.")] = 4,
    entries: Annotated[
        int, typer.Option("--entries", min=1, help="Entries checked per weight, chosen at random.")
    ] = 20,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest relative error that passes.")] = 1e-6,
    set_: SetOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Check the backward pass of your architecture and loss by central differences, in float64.

    Exit code 0 when every layer and parameter passes, 1 when any fails.
    Example: dnn gradcheck configs/binary_batchnorm.yaml --samples 8
    """
    from dnncli.cli.views.inspection import gradcheck_rows, gradcheck_title
    from dnncli.cli.views.tables import fitted_table, show
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.inspection import gradcheck_config

    report = gradcheck_config(config_mod.load(config, set_ or []), samples, entries, tolerance)
    if json_:
        _echo_json(report)
    else:
        console = _console()
        cols, rows = gradcheck_rows(report)
        show(console, [fitted_table(console, cols, rows, console.width, title=gradcheck_title(report))])
        typer.echo("All gradients match." if report["passed"] else "Some gradients do not match.")
    if not report["passed"]:
        raise typer.Exit(1)


@app.command()
@handles_errors
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dnn train.")],
    out: Annotated[Path | None, typer.Option("--out", help="The PNG to write (default RUN_DIR/plot.png).")] = None,
):
    """Loss and metric curves, and a heat map of gradient norms (layers by epochs, log scale), as a PNG.

    Needs matplotlib: pip install '.[plot]' in a checkout of dnncli, or pip install matplotlib.
    Example: dnn plot runs/quickstart-20260101-120000
    """
    from dnncli.experiment.plot import plot_run

    if out is not None and out.exists():
        _fail(f"--out {out}: exists already; choose another file.")
    path = plot_run(run_dir, out or Path(run_dir) / "plot.png")
    typer.echo(f"Wrote {path}")


@app.command()
@handles_errors
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dnn train.")],
    format_: Annotated[str, typer.Option("--format", help="The file format: onnx (the only one).")] = "onnx",
    out: Annotated[Path | None, typer.Option("--out", help="The file to write (default RUN_DIR/model.onnx).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """The trained model as one ONNX file: raw inputs in, dnn predict's probabilities (and class) or values out.

    Needs onnx: pip install '.[export]'. Example: dnn export runs/quickstart-20260101-120000 --out model.onnx
    """
    from dnncli.experiment.export import export_onnx

    if format_ != "onnx":
        _fail(f"--format {format_}: unknown; the format there is: onnx.")
    result = export_onnx(run_dir, out, force=force)
    if json_:
        _echo_json(result.to_dict())
        return

    def tensor(spec):
        dims = ", ".join("batch" if d is None else str(d) for d in spec.shape)
        return f"{spec.name} {spec.dtype}[{dims}]"

    typer.echo(f"Wrote {result.path} (ONNX, opset {result.opset})")
    typer.echo(f"  input:   {tensor(result.input)}")
    typer.echo(f"  outputs: {', '.join(tensor(o) for o in result.outputs)}")
    for step in result.steps:
        typer.echo(f"  {step.stage}: {' '.join(step.ops) or '(identity at inference)'}")
    for key, value in result.metadata.items():
        typer.echo(f"  metadata {key}: {value}")
    typer.echo(
        f"Run it: onnxruntime.InferenceSession('{result.path}').run(None,"
        f" {{'{result.input.name}': x.astype('{result.input.dtype}')}})"
    )


@app.command()
@handles_errors
def bench(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps to time (after 5 untimed).")] = 50,
    set_: SetOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Samples/s of your config, its GFLOP/s against this machine's matrix-product peak, and where the time goes.

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
    _emit(bench_config(config_mod.load(config, set_ or []), reporter, steps=steps), json_, bench_view)


@app.command()
@handles_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_OR_SWEEP_DIR...", help="Run directories, or sweeps.")],
    metric: Annotated[str | None, typer.Option("--metric", help="A logged column (default val_loss, or loss).")] = None,
    x: Annotated[str, typer.Option("--x", help="The plot's axis: epoch, step, samples or seconds.")] = "epoch",
    plot: Annotated[Path | None, typer.Option("--plot", help="Overlay the runs' curves in this PNG.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Runs side by side: the config keys that differ, final and best metric, epochs, time; curves overlaid.

    Example: dnn compare runs/sgd runs/adam --plot curves.png --x samples
    """
    from dnncli.experiment.compare import compare as compare_runs
    from dnncli.experiment.compare import plot_compare

    if plot is not None and plot.exists():
        _fail(f"--plot {plot}: exists already; choose another file.")
    report = compare_runs(runs, metric or ("loss" if x != "epoch" else None))
    if plot is not None:
        plot_compare(report, plot, x)
    from dnncli.cli.views.tuning import compare_table

    _emit(report, json_, lambda console, r: [compare_table(console, r)])
    if plot is not None and not json_:
        typer.echo(f"Wrote {plot}")


@app.command()
@handles_errors
def sweep(
    sweep_file: Annotated[Path | None, typer.Argument(metavar="SWEEP.yaml", help="The sweep file.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Sweep directory (default runs/sweeps/NAME-TIME).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Trials at once (default: cores).")] = None,
    address: Annotated[str | None, typer.Option("--address", help="Join the Ray cluster at HOST:PORT.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Finish the sweep in this directory.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
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
        _fail("give a SWEEP.yaml, or --resume DIR.")
    if resume is not None:
        out, spec = resume, read_sweep(Path(resume) / "sweep.yaml") if (Path(resume) / "sweep.yaml").exists() else None
        if spec is None:
            _fail(f"--resume {resume}: not a sweep directory (no sweep.yaml).")
    else:
        spec = read_sweep(sweep_file)
        # under runs/, so that tensorboard --logdir runs/ and dnn compare runs/... see sweeps beside runs
        out = out or Path("runs") / "sweeps" / f"{sweep_file.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    console = _console() if sys.stdout.isatty() and not json_ else None
    view = SweepView(spec.metric, spec.mode, console, quiet=quiet or json_)
    try:
        report = run_sweep(sweep_file, out, workers=workers, address=address, view=view, resume=resume is not None)
    finally:
        view.close()
    if json_:
        _echo_json(report)
        return
    console = _console()
    show(console, [sweep_table(console, report)])
    if report["best"]:
        typer.echo(
            f"Best: {report['best']['run_dir']} ({spec.metric} {report['best']['metric']:.6g});"
            f" its config: {Path(out) / 'best.yaml'}; every trial: {Path(out) / 'results.csv'}"
        )


@app.command("lr-find")
@handles_errors
def lr_find(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    min_lr: Annotated[float, typer.Option("--min", help="The first learning rate.")] = 1e-7,
    max_lr: Annotated[float, typer.Option("--max", help="The last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", min=5, help="Steps from --min to --max, exponentially.")] = 100,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the loss against the rate into this PNG.")] = None,
    set_: SetOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """The learning-rate range test: the loss as the rate grows exponentially, and the rate to use.

    Trains from the config's initial weights; saves no weights and makes no run directory.
    Example: dnn lr-find configs/quickstart.yaml --plot lr.png
    """
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.lrfind import lr_find as range_test
    from dnncli.experiment.lrfind import plot_range_test

    if plot is not None and plot.exists():
        _fail(f"--plot {plot}: exists already; choose another file.")
    report = range_test(config_mod.load(config, set_ or []), min_lr, max_lr, steps)
    if plot is not None:
        plot_range_test(report, plot)
    if json_:
        _echo_json(report)
        return
    s = report["suggestions"]
    typer.echo(f"{report['config']}: {report['steps']} steps from {min_lr:g} to {max_lr:g}; {report['stopped']}.")
    typer.echo(f"Lowest smoothed loss at rate {report['min_loss_rate']:.3g}.")
    typer.echo(f"Suggested: {s['min_over_10']:.3g} (the minimum / 10); steepest descent at {s['steepest']:.3g}.")
    typer.echo(f"Use: {report['command']}")
    if plot is not None:
        typer.echo(f"Wrote {plot}")


data_app = typer.Typer(
    help="Datasets: what ships, what can be downloaded, and where each is found.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


@data_app.command("fetch")
@handles_errors
def data_fetch(
    name: Annotated[str, typer.Argument(help="mnist or fashion-mnist.")],
    dir_: Annotated[
        Path | None, typer.Option("--dir", help="Where the files go (default $DNN_DATASETS/<name>, else data/<name>).")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Download from this base URL instead of the public mirrors.")
    ] = None,
):
    """Download a dataset's four IDX files, check their md5, resume a broken download.

    Example: dnn data fetch fashion-mnist (configs that name $DNN_DATASETS/fashion-mnist then find it)
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from dnncli.data.catalog import default_directory
    from dnncli.data.fetch import fetch

    directory = dir_ or default_directory(name)
    tasks = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=_console_err(),
        transient=False,
    ) as bar:

        def progress(file, done, total):
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done, total=total)

        report = fetch(name, directory, base_url=url, progress=progress)
    for file, status in report:
        typer.echo(f"{directory / file}: {status}, md5 verified")


@data_app.command("list")
@handles_errors
def data_list(
    check: Annotated[bool, typer.Option("--check", help="Also verify each present file's checksum.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object instead of the table.")] = False,
):
    """The datasets that ship, those that can be downloaded, and where each is found (or how to get it).

    A config's $DNN_DATASETS/<name>/... is looked for in $DNN_DATASETS, then in data/ beside the config
    (from its folder upwards), then in data/ in the current directory; this command looks from here.
    """
    from dnncli.cli.views.results import data_list_view
    from dnncli.data.catalog import listing

    _emit(listing(Path.cwd(), check), json_, data_list_view)


def _console_err():
    from rich.console import Console

    return Console(stderr=True)


def main():
    app()


if __name__ == "__main__":
    main()
