"""The run's transforms around the layers: its input scaling in; out, a classifier's probabilities and class as
the loss reads them, or a regression's values with the target scaling undone."""

from __future__ import annotations

import numpy as np

from dnncli.errors import DnnError
from dnncli.experiment.export.activations import emit_activation
from dnncli.experiment.export.graph import Graph
from dnncli.experiment.export.result import TensorSpec
from dnncli.nn import activations as act_mod


def input_scaling(g: Graph, x: str, prep, model) -> str:
    """The preparation's input scaling applied to the raw input ``x``; ``x`` itself where there is none."""
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


def outputs(g: Graph, x: str, model, loss, prep) -> tuple[TensorSpec, ...]:
    """The graph's outputs from the last layer's ``x``: ``probabilities`` (and ``class``) or ``values``."""
    shape = (None, *model.output_shape)
    dtype = model.dtype.name
    if loss is not None and loss.classifies:
        transform = probabilities_transform(loss, model)
        if transform is not None:
            g.stage(f"probabilities ({transform.name} of the logits, as the loss reads them)", "probabilities")
            x = emit_activation(g, x, transform, "probabilities")
        probs = g.output(x, "probabilities")
        specs = [TensorSpec(probs, dtype, shape)]
        rule = class_rule(loss, model)
        if rule is not None:
            g.stage(f"class ({rule})", "class")
            if rule == "argmax":
                cls = g.op("ArgMax", [probs], axis=1, keepdims=0)
            else:
                above = g.op("Greater", [probs, g.const(0.5, "threshold")])
                as_int = g.op("Cast", [above], to=g.onnx.TensorProto.INT64)
                cls = g.op("Reshape", [as_int, g.const([-1], "shape", np.int64)])
            specs.append(TensorSpec(g.output(cls, "class"), "int64", (None,)))
        return tuple(specs)
    if loss is not None:
        probabilities_transform(loss, model)  # a regression loss that transforms its outputs is refused there
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


def probabilities_transform(loss, model):
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


def class_rule(loss, model) -> str | None:
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
