"""Layers in inference mode as ONNX ops, one function per kind, each mirroring its NumPy ``forward``."""

from __future__ import annotations

import numpy as np

from dnncli.errors import DnnError
from dnncli.experiment.export.activations import emit_activation
from dnncli.experiment.export.graph import Graph
from dnncli.nn import layers as layers_mod


def emit_layer(g: Graph, x: str, layer, i: int) -> str:
    """Layer ``i`` applied to ``x``, as a stage of its own; a layer of a type without ONNX equivalent is an error
    naming its index and name."""
    emit = LAYERS.get(type(layer))
    if emit is None:
        raise DnnError(
            f"layer {i} ({layer.name!r}, type {layer.type_name!r}) has no ONNX equivalent in the exporter.",
            ("layers", i),
        )
    g.stage(f"layer {i} {layer.type_name} {layer.name!r}", layer.name)
    return emit(g, x, layer, i)


def _dense(g: Graph, x, layer, i):
    # MatMul then Add, as Dense.forward: the bias added after the product, not folded into a Gemm accumulator
    x = g.op("MatMul", [x, g.const(layer.params["kernel"], "kernel")])
    if layer.use_bias:
        x = g.op("Add", [x, g.const(layer.params["bias"], "bias")])
    return _activation_layer(g, x, layer, i)


def _activation_layer(g: Graph, x, layer, i):
    return emit_activation(g, x, layer.activation, layer.name, i)


def _flatten(g: Graph, x, layer, i):
    return g.op("Flatten", [x], axis=1)


def _dropout(g: Graph, x, layer, i):
    return x  # the identity at inference


def _batch_normalization(g: Graph, x, layer, i):
    # folded into x * k + shift with k and shift computed exactly as BatchNormalization.forward computes them at
    # inference, in the model's dtype; ONNX's BatchNormalization would round differently and take epsilon as float32
    p = layer.params
    k = 1.0 / np.sqrt(p["moving_variance"] + layer.epsilon)
    if layer.scale:
        k = p["gamma"] * k
    shift = -p["moving_mean"] * k
    if layer.center:
        shift += p["beta"]
    x = g.op("Mul", [x, g.const(k, "multiplier")])
    return g.op("Add", [x, g.const(shift, "shift")])


LAYERS = {
    layers_mod.Dense: _dense,
    layers_mod.ActivationLayer: _activation_layer,
    layers_mod.Flatten: _flatten,
    layers_mod.Dropout: _dropout,
    layers_mod.BatchNormalization: _batch_normalization,
}
