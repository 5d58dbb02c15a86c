"""The checked ONNX model of a model, between the run's input scaling and its output transforms."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dnncli.experiment.export.checks import OPSET, check_opset, check_size, load_onnx
from dnncli.experiment.export.graph import Graph
from dnncli.experiment.export.layers import emit_layer
from dnncli.experiment.export.result import ExportResult, ExportStep, TensorSpec
from dnncli.experiment.export.transforms import input_scaling, outputs
from dnncli.version import __version__

INPUT = "input"


@dataclass(frozen=True)
class Built:
    """A checked ``onnx.ModelProto`` and all ``export_onnx`` reports of it but the file it goes to."""

    proto: object
    opset: int
    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    steps: tuple[ExportStep, ...]
    metadata: dict

    def result(self, path: Path) -> ExportResult:
        return ExportResult(path, self.opset, self.input, self.outputs, self.steps, self.metadata)


def build_onnx(model, loss=None, preparation=None, *, opset: int = OPSET, name: str = "dnncli"):
    """The checked ``onnx.ModelProto`` of a model, with a preparation's scaling and a loss's output transform.

    Parameters
    ----------
    model : Sequential
        Weights as they are now.
    loss : Loss or None, default=None
        Decides the outputs: a classifier's probabilities (through its logits activation where it trains on
        logits) and class, or values. None: the model's outputs as ``values``.
    preparation : Preparation or None, default=None
        Its input scaling, and for a regression loss its target scaling undone; None: neither.
    opset : int, default=OPSET
    name : str, default="dnncli"
        The graph's name.
    """
    return build(load_onnx(), model, loss, preparation, opset, name).proto


def build(onnx, model, loss, prep, opset: int, name: str) -> Built:
    """``build_onnx`` with the onnx module given, and what is reported of the graph."""
    check_opset(onnx, opset)
    check_size(model)
    g = Graph(onnx, model.dtype)
    x = input_scaling(g, g.unique(INPUT), prep, model)
    for i, layer in enumerate(model.layers):
        x = emit_layer(g, x, layer, i)
    output_specs = outputs(g, x, model, loss, prep)

    input_spec = TensorSpec(INPUT, model.dtype.name, (None, *model.input_shape))
    graph = onnx.helper.make_graph(
        g.nodes,
        name,
        [input_spec.value_info(onnx)],
        [spec.value_info(onnx) for spec in output_specs],
        initializer=g.initializers,
    )
    imports = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=imports, producer_name="dnncli")
    # the oldest IR version that carries this opset: onnx's newest one is refused by older runtimes
    proto.ir_version = onnx.helper.find_min_ir_version_for(imports)
    proto.producer_version = __version__
    metadata = _metadata(prep)
    if metadata:
        onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    return Built(proto, opset, input_spec, output_specs, g.summary(), metadata)


def _metadata(prep) -> dict:
    """The model's ``metadata_props``: the encoded input's columns and the class names, where the run has them."""
    if prep is None:
        return {}
    metadata = {}
    if prep.encoder is not None:
        # the graph takes the encoded row (one-hot categories, fills applied); its columns, in order
        metadata["input_columns"] = json.dumps(prep.encoder.feature_names())
    if prep.class_names is not None:
        metadata["class_names"] = json.dumps(list(prep.class_names))
    return metadata
