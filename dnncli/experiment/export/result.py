"""What an export reports: the graph's input and outputs, each stage's ops, the model's metadata, the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

BATCH = "batch"  # the symbolic name of the dynamic batch axis


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: its name, element type, and shape with ``None`` for the batch axis."""

    name: str
    dtype: str
    shape: tuple

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def value_info(self, onnx):
        """As the graph declares it: ``None`` becomes the symbolic batch axis."""
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(self.dtype))
        dims = [BATCH if d is None else int(d) for d in self.shape]
        return onnx.helper.make_tensor_value_info(self.name, elem, dims)


@dataclass(frozen=True)
class ExportStep:
    """One stage of the graph (input scaling, a layer, an output transform) and the ONNX ops it became."""

    stage: str
    ops: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"stage": self.stage, "ops": list(self.ops)}


@dataclass(frozen=True)
class ExportResult:
    """What ``export_onnx`` wrote.

    Attributes
    ----------
    path : Path
        The ONNX file.
    opset : int
        The default-domain opset the graph imports.
    input : TensorSpec
        The one graph input: raw samples of the model's input shape.
    outputs : tuple of TensorSpec
        ``probabilities`` (and ``class``, int64, where the loss picks one class per row) for a classifier,
        ``values`` otherwise.
    steps : tuple of ExportStep
        Each stage in order with its ops; a stage without ops is the identity at inference (dropout).
    metadata : dict of str to str
        The model's ``metadata_props``: ``input_columns`` and ``class_names`` (JSON lists) where the run has them.
    """

    path: Path
    opset: int
    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    steps: tuple[ExportStep, ...]
    metadata: dict

    def to_dict(self) -> dict:
        """As JSON takes it."""
        return {
            "path": str(self.path),
            "format": "onnx",
            "opset": self.opset,
            "input": self.input.to_dict(),
            "outputs": [o.to_dict() for o in self.outputs],
            "steps": [s.to_dict() for s in self.steps],
            "metadata": dict(self.metadata),
        }
