"""``dnn export``: a finished run's model, checked, written to one ONNX file atomically."""

from __future__ import annotations

from pathlib import Path

from dnncli.experiment.export.build import build
from dnncli.experiment.export.checks import OPSET, load_onnx
from dnncli.experiment.export.result import ExportResult
from dnncli.files import atomic_write, check_target, exists_already


def export_onnx(run_dir, out=None, *, opset: int = OPSET, force: bool = False) -> ExportResult:
    """Write a finished run's model, with its input and output transforms, as one ONNX file.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``dnn train`` (``config.yaml``, ``model.npz``, ``preprocessing.npz``).
    out : path or None, default=None
        The file to write; ``RUN_DIR/model.onnx`` when None.
    opset : int, default=OPSET
        The default-domain opset to import (13 or later).
    force : bool, default=False
        Replace ``out`` if it exists; otherwise an existing file is an error and is left alone.

    Returns
    -------
    ExportResult
        The path written, opset, input and outputs, and a per-stage summary of the graph.

    Raises
    ------
    DnnError
        Without onnx installed, for a run that cannot be loaded, an existing ``out`` without ``force``, or a
        layer or activation with no ONNX equivalent (the message names the layer's index and name).
    """
    from dnncli.experiment.evaluate import load_run

    onnx = load_onnx()
    config, model, loss, prep = load_run(run_dir)
    path = Path(run_dir) / "model.onnx" if out is None else Path(out)
    check_target(path, force)  # before the work (a FIFO or a directory is never replaced); the write closes the race
    built = build(onnx, model, loss, prep, opset, config.name)
    data = built.proto.SerializeToString()
    try:
        atomic_write(path, lambda f: f.write(data), binary=True, exclusive=not force)
    except FileExistsError:
        raise exists_already(path) from None
    return built.result(path)
