"""Activations as ONNX ops, one function per kind, each mirroring its NumPy ``forward``.

ONNX attributes are float32: in a float64 graph, an activation with a constant (leaky relu's slope, elu's alpha)
is written with ops on float64 initializers instead, and onnxruntime has no float64 kernel for Elu, Selu or Erf.
"""

from __future__ import annotations

import math

from dnncli.errors import DnnError
from dnncli.experiment.export.graph import Graph
from dnncli.nn import activations as act_mod


def emit_activation(g: Graph, x: str, activation, where: str, i: int | None = None) -> str:
    """``activation`` applied to ``x``; ``where`` (layer ``i``'s name, or a stage) names it in the error for an
    activation of a type without ONNX equivalent (a subclass too: it may change the maths)."""
    emit = ACTIVATIONS.get(type(activation))
    if emit is None:
        layer = f"layer {i} ({where!r})" if i is not None else where
        raise DnnError(
            f"{layer}: activation {activation.name!r} has no ONNX equivalent in the exporter.",
            ("layers", i) if i is not None else (),
        )
    return emit(g, x, activation)


def _linear(g, x, a):
    return x


def _relu(g, x, a):
    return g.op("Relu", [x])


def _leaky_relu(g, x, a):
    if g.float32:
        return g.op("LeakyRelu", [x], alpha=a.negative_slope)
    return g.op("Max", [x, g.op("Mul", [x, g.const(a.negative_slope, "negative_slope")])])


def _sigmoid(g, x, a):
    return g.op("Sigmoid", [x])


def _tanh(g, x, a):
    return g.op("Tanh", [x])


def _softmax(g, x, a):
    return g.op("Softmax", [x], axis=-1)


def _elu(g, x, a):
    # ELU and SELU share ELU.forward: scale * max(x, 0) + scale * alpha * expm1(min(x, 0))
    if g.float32:
        if type(a) is act_mod.SELU:
            return g.op("Selu", [x], alpha=a.alpha, gamma=a.scale)
        if a.scale == 1.0:
            return g.op("Elu", [x], alpha=a.alpha)
    zero, one = g.const(0.0, "zero"), g.const(1.0, "one")
    neg = g.op("Sub", [g.op("Exp", [g.op("Min", [x, zero])]), one])
    neg = g.op("Mul", [neg, g.const(a.alpha * a.scale, "alpha")])
    pos = g.op("Max", [x, zero])
    if a.scale != 1.0:
        pos = g.op("Mul", [pos, g.const(a.scale, "scale")])
    return g.op("Add", [pos, neg])


def _gelu(g, x, a):
    if a.approximate:
        # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
        cube = g.op("Mul", [x, g.op("Mul", [x, x])])
        inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, "coefficient")])])
        term = g.op("Tanh", [g.op("Mul", [inner, g.const(act_mod.GELU._C, "sqrt_2_over_pi")])])
        half_x = g.op("Mul", [x, g.const(0.5, "half")])
        return g.op("Mul", [half_x, g.op("Add", [term, g.const(1.0, "one")])])
    # x * 0.5 * (1 + erf(x / sqrt(2))); erf in float32 where the graph is float64 (no float64 kernel to run)
    scaled = g.op("Div", [x, g.const(math.sqrt(2.0), "sqrt_2")])
    if g.float32:
        erf = g.op("Erf", [scaled])
    else:
        as_float = g.op("Cast", [scaled], to=g.onnx.TensorProto.FLOAT)
        erf = g.op("Cast", [g.op("Erf", [as_float])], to=g.onnx.TensorProto.DOUBLE)
    cdf = g.op("Mul", [g.op("Add", [erf, g.const(1.0, "one")]), g.const(0.5, "half")])
    return g.op("Mul", [x, cdf])


def _softplus(g, x, a):
    # max(x, 0) + log(1 + exp(-|x|)) as Softplus.forward: ONNX's Softplus is log(exp(x) + 1), which a runtime may
    # compute as written and overflow for x above 88 in float32; and onnxruntime has no float64 Softplus
    tail = g.op("Exp", [g.op("Neg", [g.op("Abs", [x])])])
    tail = g.op("Log", [g.op("Add", [tail, g.const(1.0, "one")])])
    return g.op("Add", [g.op("Relu", [x]), tail])


def _swish(g, x, a):
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


ACTIVATIONS = {
    act_mod.Linear: _linear,
    act_mod.ReLU: _relu,
    act_mod.LeakyReLU: _leaky_relu,
    act_mod.Sigmoid: _sigmoid,
    act_mod.Tanh: _tanh,
    act_mod.Softmax: _softmax,
    act_mod.ELU: _elu,
    act_mod.SELU: _elu,
    act_mod.GELU: _gelu,
    act_mod.Softplus: _softplus,
    act_mod.Swish: _swish,
}
