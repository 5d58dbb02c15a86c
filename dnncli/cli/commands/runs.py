"""Commands on a config or a finished run: ``eval``, ``predict``, ``summary``, ``validate``, ``plot``, ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.completion import complete_config_or_run, complete_run_dir
from dnncli.cli.options import (
    JsonOption,
    SetOption,
    fail,
    handles_errors,
    refuse_existing,
)
from dnncli.cli.output import echo_json, emit, new_console


@handles_errors
def eval_(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory written by dnn train.", autocompletion=complete_run_dir)
    ],
    data: Annotated[Path | None, typer.Option("--data", help="Evaluate on this .npz (arrays x and y) instead.")] = None,
    json_: JsonOption = False,
):
    """Loss, metrics and (for classification) a confusion matrix on held-out data.

    Example: dnn eval runs/quickstart-20260101-120000 --json
    """
    from dnncli.cli.views.results import eval_tables
    from dnncli.experiment.evaluate import evaluate_run

    emit(evaluate_run(run_dir, data), json_, eval_tables)


@handles_errors
def summary(
    config: Annotated[
        Path, typer.Argument(help="A YAML config, or a run directory.", autocompletion=complete_config_or_run)
    ],
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
    console = new_console()
    show(console, [summary_table(console, s, f'Model: "{cfg.name}"')])
    for line in summary_lines(s):
        console.print(line)


@handles_errors
def validate(
    config: Annotated[Path, typer.Argument(help="A YAML config.")],
    set_: SetOption = None,
):
    """Check a config and print it resolved, every default filled in (itself a valid config).

    Example: dnn validate configs/quickstart.yaml --set optimizer.name=sgd > resolved.yaml
    """
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.modeline import with_modeline

    cfg = config_mod.load(config, set_ or [])
    typer.echo(with_modeline(cfg.to_yaml()), nl=False)  # its schema, relative to here (where > FILE writes)


@handles_errors
def predict(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory written by dnn train.", autocompletion=complete_run_dir)
    ],
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


@handles_errors
def plot(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory written by dnn train.", autocompletion=complete_run_dir)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The PNG to write (default RUN_DIR/plot.png, or activations.png)."),
    ] = None,
    activations: Annotated[
        bool,
        typer.Option(
            "--activations",
            help="Instead: each layer's activations by recorded step, as a heat map, with the share"
            " at 0 (relu) or near a bound (sigmoid, tanh) beside it.",
        ),
    ] = False,
):
    """Loss and metric curves, the gradient noise scale by epoch, and a heat map of gradient norms (layers by
    epochs, log scale), as a PNG; with --activations, the activations' histograms over the run.

    Needs matplotlib: pip install '.[plot]' in a checkout of dnncli, or pip install matplotlib.
    Example: dnn plot runs/quickstart-20260101-120000 --activations
    """
    refuse_existing(out, "--out")
    if activations:
        from dnncli.experiment.plot_instruments import plot_activations

        path = plot_activations(run_dir, out or Path(run_dir) / "activations.png")
    else:
        from dnncli.experiment.plot import plot_run

        path = plot_run(run_dir, out or Path(run_dir) / "plot.png")
    typer.echo(f"Wrote {path}")


@handles_errors
def export(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory written by dnn train.", autocompletion=complete_run_dir)
    ],
    format_: Annotated[str, typer.Option("--format", help="The file format: onnx (the only one).")] = "onnx",
    out: Annotated[Path | None, typer.Option("--out", help="The file to write (default RUN_DIR/model.onnx).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    json_: JsonOption = False,
):
    """The trained model as one ONNX file: raw inputs in, dnn predict's probabilities (and class) or values out.

    Needs onnx: pip install '.[export]'. Example: dnn export runs/quickstart-20260101-120000 --out model.onnx
    """
    from dnncli.experiment.export import export_onnx

    if format_ != "onnx":
        fail(f"--format {format_}: unknown; the format there is: onnx.")
    result = export_onnx(run_dir, out, force=force)
    if json_:
        echo_json(result.to_dict())
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
