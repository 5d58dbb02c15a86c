"""ONNX export of a finished run: raw inputs in, ``dnn predict``'s probabilities (and class) or values out.

The graph holds everything ``dnn predict`` does after reading its input file: the run's input scaling, every
layer in inference mode (batch normalization folded from its moving statistics, dropout gone), the output
activation, the loss's probabilities transform for a classifier trained on logits, and for regression the
target scaling undone. Each piece mirrors the NumPy code's formula and its order of operations, with constants
of the model's dtype, so that onnxruntime's numbers equal ``dnn predict``'s to rounding.

``onnx`` is an optional dependency, imported only when a model is exported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError
from dnncli.files import atomic_write, check_target
from dnncli.nn import activations as act_mod
from dnncli.nn import layers as layers_mod
from dnncli.version import __version__

OPSET = 17  # every op used exists there with today's semantics; onnxruntime has run it since 1.12
MIN_OPSET = 13  # Softmax over the last axis alone, as dnncli's softmax
MAX_PROTO_BYTES = 2**31 - 2**24  # protobuf's 2 GiB limit on one message, less room for the graph itself
INSTALL = "pip install '.[export]' in a checkout of dnncli, or pip install onnx"
INPUT = "input"
BATCH = "batch"  # the symbolic name of the dynamic batch axis


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: its name, element type, and shape with ``None`` for the batch axis."""

    name: str
    dtype: str
    shape: tuple

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


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

    onnx = _onnx()
    config, model, loss, prep = load_run(run_dir)
    path = Path(run_dir) / "model.onnx" if out is None else Path(out)
    check_target(path, force)  # before the work (a FIFO or a directory is never replaced); the write closes the race
    proto, built = _build(onnx, model, loss, prep, opset, config.name)
    data = proto.SerializeToString()
    try:
        atomic_write(path, lambda f: f.write(data), binary=True, exclusive=not force)
    except FileExistsError:
        raise _exists(path) from None
    return ExportResult(path, opset, built.input, built.outputs, built.steps, built.metadata)


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
    proto, _ = _build(_onnx(), model, loss, preparation, opset, name)
    return proto


def _onnx():
    try:
        import onnx
    except ImportError:
        raise DnnError(f"ONNX export needs the onnx package: {INSTALL}.") from None
    return onnx


def _exists(path) -> DnnError:
    return DnnError(f"{path}: exists already; choose another file, or replace it with --force.")


@dataclass
class _Built:
    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    steps: tuple[ExportStep, ...]
    metadata: dict


class _Graph:
    """Nodes and initializers under construction; every tensor name unique, every op recorded under its stage."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes, self.initializers, self.steps = [], [], []
        self._names: set[str] = set()
        self.scope = "graph"

    @property
    def float32(self) -> bool:
        return self.dtype == np.float32

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def stage(self, description: str, scope: str) -> None:
        self.steps.append((description, []))
        self.scope = scope

    def const(self, value, what: str, dtype=None) -> str:
        """An initializer of the model's dtype (or ``dtype``), converted as NumPy converts it in the layers."""
        name = self.unique(f"{self.scope}.{what}")
        array = np.asarray(value).astype(dtype or self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs, **attrs) -> str:
        out = self.unique(f"{self.scope}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        self.steps[-1][1].append(op_type)
        return out

    def output(self, tensor: str, name: str) -> str:
        """Give the tensor an output's name: its producing node's output renamed, or an Identity."""
        last = self.nodes[-1] if self.nodes else None
        if last is not None and last.output[0] == tensor:
            last.output[0] = name
            return name
        self.nodes.append(
            self.onnx.helper.make_node("Identity", [tensor], [name], name=self.unique(f"{name}/Identity"))
        )
        self.steps[-1][1].append("Identity")
        return name


def _build(onnx, model, loss, prep, opset, name):
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= latest:
        raise DnnError(
            f"opset must be an integer from {MIN_OPSET} to {latest} (what this onnx knows). Received: {opset!r}"
        )
    weight_bytes = sum(w.nbytes for layer in model.layers for w in layer.params.values())
    if weight_bytes > MAX_PROTO_BYTES:
        raise DnnError(
            f"the model's weights take {weight_bytes / 2**30:.1f} GiB; one ONNX file holds at most 2 GiB"
            " (external weight files are not supported by this exporter)."
        )
    g = _Graph(onnx, model.dtype)
    x = g.unique(INPUT)
    x = _input_scaling(g, x, prep, model)
    for i, layer in enumerate(model.layers):
        emit = _LAYERS.get(type(layer))
        if emit is None:
            raise DnnError(
                f"layer {i} ({layer.name!r}, type {layer.type_name!r}) has no ONNX equivalent in the exporter.",
                ("layers", i),
            )
        g.stage(f"layer {i} {layer.type_name} {layer.name!r}", layer.name)
        x = emit(g, x, layer, i)
    outputs = _outputs(g, x, model, loss, prep)

    input_spec = TensorSpec(INPUT, model.dtype.name, (None, *model.input_shape))
    graph = onnx.helper.make_graph(
        g.nodes,
        name,
        [_value_info(onnx, input_spec)],
        [_value_info(onnx, spec) for spec in outputs],
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
    steps = tuple(ExportStep(stage, tuple(ops)) for stage, ops in g.steps)
    return proto, _Built(input_spec, outputs, steps, metadata)


def _value_info(onnx, spec: TensorSpec):
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype))
    dims = [BATCH if d is None else int(d) for d in spec.shape]
    return onnx.helper.make_tensor_value_info(spec.name, elem, dims)


def _metadata(prep) -> dict:
    if prep is None:
        return {}
    metadata = {}
    if prep.encoder is not None:
        # the graph takes the encoded row (one-hot categories, fills applied); its columns, in order
        metadata["input_columns"] = json.dumps(prep.encoder.feature_names())
    if prep.class_names is not None:
        metadata["class_names"] = json.dumps(list(prep.class_names))
    return metadata


# input and outputs ----------------------------------------------------------------------------------------------
def _input_scaling(g: _Graph, x: str, prep, model) -> str:
    if prep is None or prep.inputs.kind.method == "none":
        return x
    p = prep.inputs
    g.stage(f"input scaling ({p.kind.config})", "input_scaling")
    offset, scale = p.offset.astype(model.dtype), p.scale.astype(model.dtype)
    # as Preprocessor.transform: subtract, then divide, in the model's dtype; x - 0 and x / 1 are exact no-ops
    if offset.any():
        x = g.op("Sub", [x, g.const(offset, "offset")])
    if (scale != 1).any():
        x = g.op("Div", [x, g.const(scale, "scale")])
    return x


def _outputs(g: _Graph, x: str, model, loss, prep) -> tuple[TensorSpec, ...]:
    shape = (None, *model.output_shape)
    dtype = model.dtype.name
    if loss is not None and loss.classifies:
        transform = _probabilities_transform(loss, model)
        if transform is not None:
            g.stage(f"probabilities ({transform.name} of the logits, as the loss reads them)", "probabilities")
            x = _activation(g, x, transform, "probabilities")
        probs = g.output(x, "probabilities")
        outputs = [TensorSpec(probs, dtype, shape)]
        rule = _class_rule(loss, model)
        if rule is not None:
            g.stage(f"class ({rule})", "class")
            if rule == "argmax":
                cls = g.op("ArgMax", [probs], axis=1, keepdims=0)
            else:
                above = g.op("Greater", [probs, g.const(0.5, "threshold")])
                as_int = g.op("Cast", [above], to=g.onnx.TensorProto.INT64)
                cls = g.op("Reshape", [as_int, g.const([-1], "shape", np.int64)])
            outputs.append(TensorSpec(g.output(cls, "class"), "int64", (None,)))
        return tuple(outputs)
    if loss is not None:
        _probabilities_transform(loss, model)  # a regression loss that transforms its outputs is refused there
    if prep is not None and prep.targets is not None and prep.targets.kind.method != "none":
        t = prep.targets
        g.stage(f"target scaling undone ({t.kind.config})", "target_scaling")
        # as Preprocessor.inverse: y * scale + offset; in the model's dtype, where dnn predict works in float64
        x = g.op("Mul", [x, g.const(t.scale, "scale")])
        x = g.op("Add", [x, g.const(t.offset, "offset")])
    return (TensorSpec(g.output(x, "values"), dtype, shape),)


def _probe(model, rows: int = 16) -> np.ndarray:
    """Model outputs to try the loss's transforms on: both signs, near and far from 0.5, in the model's dtype."""
    n = int(np.prod(model.output_shape))
    rng = np.random.default_rng(0)
    return (rng.normal(size=(rows, n)) * 3).astype(model.dtype)


def _probabilities_transform(loss, model):
    """The activation that ``loss.probabilities`` applies to the model's outputs, or None for the identity.

    A loss trained on logits reads them through its ``logits_activation``; any other loss returns outputs as
    they are. Both are checked against the loss's own method, so that a loss doing anything else is refused
    instead of exported wrong.
    """
    probe = _probe(model)
    got = loss.probabilities(probe.copy())
    transform = act_mod.get(loss.logits_activation) if loss.from_logits and loss.logits_activation else None
    want = probe if transform is None else transform(probe)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=1e-7):
        raise DnnError(
            f"loss {loss.name!r}: its probabilities transform has no ONNX equivalent in the exporter"
            f" (expected {'the identity' if transform is None else transform.name})."
        )
    return transform


def _class_rule(loss, model) -> str | None:
    """How ``loss.predicted_classes`` picks a class: ``argmax``, ``0.5 threshold``, or None (no single class)."""
    if len(model.output_shape) != 1:
        return None
    probs = loss.probabilities(_probe(model))
    classes = loss.predicted_classes(probs)
    if classes is None:
        return None
    classes = np.asarray(classes)
    if probs.shape[1] == 1 and np.array_equal(classes, (probs[:, 0] > 0.5).astype(np.int64)):
        return "0.5 threshold"
    if np.array_equal(classes, probs.argmax(axis=1)):
        return "argmax"
    return None  # a rule of its own: the probabilities alone are exported


# layers ---------------------------------------------------------------------------------------------------------
def _dense(g: _Graph, x, layer, i):
    # MatMul then Add, as Dense.forward: the bias added after the product, not folded into a Gemm accumulator
    x = g.op("MatMul", [x, g.const(layer.params["kernel"], "kernel")])
    if layer.use_bias:
        x = g.op("Add", [x, g.const(layer.params["bias"], "bias")])
    return _activation(g, x, layer.activation, layer.name, i)


def _activation_layer(g: _Graph, x, layer, i):
    return _activation(g, x, layer.activation, layer.name, i)


def _flatten(g: _Graph, x, layer, i):
    return g.op("Flatten", [x], axis=1)


def _dropout(g: _Graph, x, layer, i):
    return x  # the identity at inference


def _batch_normalization(g: _Graph, x, layer, i):
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


_LAYERS = {
    layers_mod.Dense: _dense,
    layers_mod.ActivationLayer: _activation_layer,
    layers_mod.Flatten: _flatten,
    layers_mod.Dropout: _dropout,
    layers_mod.BatchNormalization: _batch_normalization,
}


# activations ----------------------------------------------------------------------------------------------------
# ONNX attributes are float32: in a float64 graph, an activation with a constant (leaky relu's slope, elu's alpha)
# is written with ops on float64 initializers instead, and onnxruntime has no float64 kernel for Elu, Selu or Erf.
def _activation(g: _Graph, x, activation, where, i=None):
    emit = _ACTIVATIONS.get(type(activation))
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


_ACTIVATIONS = {
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
