"""The advice rules, in the order their items are given: causes upstream of the others first.

Each rule reads a ``Context`` (the config, the raised flags, the data) and
returns the items it finds, each with the overrides that apply it. A rule that
finds no cause in this network returns nothing: no remedy is offered for a cause
that is not there (a learning rate is never lowered to make a flag go away by
stopping learning).
"""

from __future__ import annotations

import math

import yaml

from dnncli.diagnostics.advice import FAR, Advice, Context
from dnncli.diagnostics.rules import DEAD_ACTIVATIONS, SATURATING
from dnncli.diagnostics.stepping import (
    clipping,
    extreme_class_weight,
    heavy_dropout,
    heavy_penalty,
    learning_rate,
    momentum,
    small_steps,
    weight_decay,
)

RANGES = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, math.inf)}
SATURATING_BIAS = 2.0  # a sigmoid or tanh bias this far from 0 starts its units near a bound

SIZE_FLAGS = ("vanishing", "exploding", "collapsed", "saturated", "nonfinite", "dead")
TOO_LARGE = ("exploding", "nonfinite", "saturated", "dead", "collapsed")  # what weights drawn too large do
TOO_SMALL = ("vanishing", "collapsed", "dead", "stalled")  # and too small


def input_scaling(ctx: Context) -> list[Advice]:
    """Unscaled inputs, where the first layer shows it (or anything overflowed)."""
    if ctx.raw["data"].get("scale", "none") != "none" or ctx.inputs is None or not ctx.inputs.unscaled:
        return []
    first = ctx.watched[0] if ctx.watched else None
    if first not in ctx.flagged_with(*SIZE_FLAGS) and not ctx.flagged_with("nonfinite"):
        return []
    return [
        Advice(
            f"The inputs are not scaled (data.scale: none; {ctx.inputs.describe()}): {first.name} receives them raw,"
            " so its units saturate or its gradient explodes, and everything after it inherits that. Standardize"
            " them (fitted on the training split).",
            ["data.scale=standardize"],
            list(SIZE_FLAGS),
            "data.scale: standardize",
        )
    ]


def target_scaling(ctx: Context) -> list[Advice]:
    """Regression targets in their own large units: the output's error, and every gradient, is that large."""
    t = ctx.targets
    if ctx.raw["data"].get("target_scale", "none") != "none" or t is None or not t.unscaled:
        return []
    if not ctx.flagged_with(*SIZE_FLAGS):
        return []
    return [
        Advice(
            f"The targets are not scaled (data.target_scale: none; values from {t.low:.4g} to {t.high:.4g}, std"
            f" {t.std:.3g}): the loss, and every gradient, is in their squared units. Standardize them (predictions"
            " are scaled back).",
            ["data.target_scale=standardize"],
            list(SIZE_FLAGS),
            "data.target_scale: standardize",
        )
    ]


def output_for_values(ctx: Context) -> list[Advice]:
    """A regression output whose activation cannot reach the targets."""
    t, out = ctx.targets, ctx.watched[-1] if ctx.watched else None
    if t is None or out is None or out.activation not in RANGES:
        return []
    low, high = RANGES[out.activation]
    if low <= t.low and t.high <= high:
        return []
    return [
        Advice(
            f"{out.name}'s {out.activation} outputs lie in [{low:g}, {high:g}], but the targets run from {t.low:.3g}"
            f" to {t.high:.3g}: the network cannot reach them, and the loss stays high whatever it learns. A"
            " regression output takes no activation (linear).",
            [f"model.layers.{ctx.activation_at(out)}.activation=linear"],
            list(SIZE_FLAGS),
            f"activation: linear on {out.name}",
        )
    ]


def single_sample_batches(ctx: Context) -> list[Advice]:
    """Batch normalization over batches of one sample: every output normalized to its offset."""
    t = ctx.raw["training"]
    one = t["batching"] == "stochastic" or (t["batching"] == "mini-batch" and t["batch_size"] == 1)
    if not one or not ctx.has_bn:
        return []
    return [
        Advice(
            "Batch normalization over a batch of one sample: its mean is the sample itself and its variance 0, so"
            " every normalized output is 0 and the layers after it learn from nothing. Train on mini-batches.",
            ["training.batching=mini-batch", "training.batch_size=32"],
            list(SIZE_FLAGS),
            "training: mini-batches of 32",
        )
    ]


def constant_kernel(ctx: Context) -> list[Advice]:
    """Kernels that start with one value everywhere: every unit of a layer computes, and learns, the same thing."""
    same = [w for w in ctx.watched if ctx.scale[w.index][0] == 0.0]
    if not same:
        return []
    changes = {w.index: ctx.target_scale(w)[0] for w in same}
    sets = []
    for name in sorted(set(changes.values())):
        sets += ctx.layer_overrides({i: n for i, n in changes.items() if n == name}, "kernel_initializer")
    layers = ctx.names(same)
    use = " and ".join(sorted(set(changes.values())))
    init = ctx.layers[same[0].index]["kernel_initializer"]["name"]
    return [
        Advice(
            f"{layers}: every kernel weight starts at the same value ({init}): all units of a layer compute the"
            " same output and get the same gradient, so they stay copies of one another (or, at 0, pass back"
            f" nothing). Draw them at random: {use}.",
            sets,
            list(SIZE_FLAGS),
            f"kernel_initializer: {use} in {layers}",
        )
    ]


def loss_and_output(ctx: Context) -> list[Advice]:
    """A cross-entropy told probabilities where the output gives logits, or the other way round."""
    from dnncli.nn import losses

    loss = losses.get(ctx.raw["loss"])
    out = ctx.watched[-1] if ctx.watched else None
    if loss.logits_activation is None or out is None:
        return []
    act = out.activation
    if not loss.from_logits and act == "linear":
        return [
            Advice(
                f"{loss.name} reads the output as probabilities, but {out.name} has no activation: its outputs are"
                " scores of any sign, which the loss clips, so the gradient says little. Tell the loss they are"
                f" logits (from_logits: true), or give the output activation: {loss.logits_activation}.",
                [f"loss={{name: {loss.name}, from_logits: true}}"],
                list(SIZE_FLAGS),
                f"loss: {{name: {loss.name}, from_logits: true}}",
            )
        ]
    if loss.from_logits and act in ("softmax", "sigmoid"):
        return [
            Advice(
                f"{loss.name} reads the output as logits (from_logits: true), but {out.name} applies {act}: the"
                " probabilities go through it a second time. Set from_logits: false.",
                [f"loss={{name: {loss.name}, from_logits: false}}"],
                list(SIZE_FLAGS),
                f"loss: {{name: {loss.name}, from_logits: false}}",
            )
        ]
    return []


def negative_bias(ctx: Context) -> list[Advice]:
    """Biases that start units off (negative, in relu layers) or at a bound (far from 0, in sigmoid and tanh
    layers): every layer that does, in one item."""
    if not ctx.flagged_with("dead", "collapsed", "vanishing", "saturated"):
        return []
    dead, bound = [], []
    for w in ctx.watched:
        init = ctx.layers[w.index].get("bias_initializer") or {}
        value = init.get("value", 0.0) if init.get("name") == "constant" else 0.0
        if w.activation in DEAD_ACTIVATIONS and value < 0:
            dead.append((w, value))
        elif w.activation in SATURATING and not w.output and abs(value) >= SATURATING_BIAS:
            bound.append((w, value))
    found = dead + bound
    if not found:
        return []
    values = ", ".join(sorted({f"{v:g}" for _, v in found}))
    layers = ctx.names([w for w, _ in found])
    why = (
        "most units get a negative input for every sample, output 0 and pass back no gradient"
        if dead
        else "the units start near a bound of their activation, where its derivative is next to 0"
    )
    return [
        Advice(
            f"{layers}: biases start at {values} (bias_initializer: constant): {why}. Start them at 0.",
            ctx.layer_overrides({w.index: "zeros" for w, _ in found}, "bias_initializer"),
            ["dead", "collapsed", "vanishing", "saturated"],
            f"bias_initializer: zeros in {layers}",
        )
    ]


def initializer_scale(ctx: Context) -> list[Advice]:
    """Initial weights too large or too small, judged by the gain they compound through each stack of layers."""
    for stack in ctx.stacks():
        gains = [ctx.gain(w) for w in stack]
        if min(gains) <= 0:  # constant kernels: their own rule
            continue
        total = math.prod(gains)
        worst = max(range(len(stack)), key=lambda k: abs(math.log(gains[k])))
        off = total >= FAR or total <= 1 / FAR or not 1 / FAR <= gains[worst] <= FAR
        # weights too large make signals explode or saturate, too small make them vanish: the flags must agree
        flagged = ctx.flagged_with(*(TOO_LARGE if total > 1 else TOO_SMALL))
        if not off or not any(w in flagged for w in stack):
            continue
        wrong = [w for w, g in zip(stack, gains) if not 0.8 <= g <= 1.25]
        if not wrong:
            continue
        return [_initializer_item(ctx, stack, gains, total, worst, wrong)]
    return []


def _initializer_item(ctx, stack, gains, total, worst, wrong) -> Advice:
    w = stack[worst]
    std, fan_in, _ = ctx.scale[w.index]
    _, rule, target = ctx.target_scale(w)
    direction = f"grows {total:.3g}-fold" if total > 1 else f"shrinks {1 / total:.3g}-fold"
    init = ctx.layers[w.index]["kernel_initializer"]["name"]
    if len(wrong) > 1 and 1 / FAR <= gains[worst] <= FAR:
        mean = math.exp(sum(math.log(g) for g in gains) / len(gains))
        text = (
            f"{ctx.names(wrong)}: kernel_initializer {init} draws weights at about {mean:.2g}x {rule}'s standard"
            f" deviation each: no layer is far off, but through a stack of {len(stack)} layers the signal, and the"
            f" gradient, {direction} on the way."
        )
    else:
        more = f" (and {len(wrong) - 1} more layer{'s' if len(wrong) > 2 else ''} like it)" if len(wrong) > 1 else ""
        text = (
            f"{w.name}'s kernel_initializer {init} draws weights of std {std:.2g}{more}, the furthest off: too"
            f" {'large' if std > target else 'small'} for {_article(w.activation)} {w.activation} layer with fan-in"
            f" {fan_in}, where {rule} gives {target:.2g}; through a stack of {len(stack)} layers the signal, and the"
            f" gradient, {direction}."
        )
    changes = {v.index: ctx.target_scale(v)[0] for v in wrong}
    sets = []
    for target_name in sorted(set(changes.values())):
        sets += ctx.layer_overrides({i: n for i, n in changes.items() if n == target_name}, "kernel_initializer")
    use = " and ".join(sorted(set(changes.values())))
    return Advice(f"{text} Use {use}.", sets, list(SIZE_FLAGS), f"kernel_initializer: {use} in {ctx.names(wrong)}")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def saturating_stack(ctx: Context) -> list[Advice]:
    flagged = ctx.flagged_with("vanishing", "saturated")
    hidden = [w for w in ctx.watched if not w.output and w.activation in SATURATING]
    if len(hidden) < 3 or not any(w in hidden for w in flagged):
        return []
    kinds = sorted({w.activation for w in hidden})
    bound = "0.25" if "sigmoid" in kinds else "1"
    text = (
        f"{len(hidden)} {'/'.join(kinds)} hidden layers in this network: the derivative is at most {bound}, and"
        " each layer multiplies the gradient by it on the way back. Use relu, with He initialization, in the hidden"
        " layers."
    )
    sets = ctx.layer_overrides({ctx.activation_at(w): "relu" for w in hidden}, "activation")
    sets += ctx.layer_overrides({w.index: "he_normal" for w in hidden}, "kernel_initializer")
    return [Advice(text, sets, ["vanishing", "saturated"], f"relu and he_normal in {ctx.names(hidden)}")]


def leaky_relu(ctx: Context) -> list[Advice]:
    dead = [w for w in ctx.flagged_with("dead") if w.activation in DEAD_ACTIVATIONS]
    if not dead:
        return []
    # in a stack of narrow layers one dead unit is a large share of its layer, and the next to die is anywhere
    stack = [w for w in ctx.watched if not w.output and w.activation in DEAD_ACTIVATIONS]
    narrow = len(stack) > len(dead) and all(ctx.scale[w.index][2] <= NARROW_UNITS for w in stack)
    targets = stack if narrow else dead
    why = (
        f" In layers of {NARROW_UNITS} units or fewer each unit is a large share of its layer: in every one of"
        " them, not only those dead now."
        if narrow
        else ""
    )
    return [
        Advice(
            f"leaky_relu in {ctx.names(targets)} passes a small gradient for negative inputs, so a unit that is off"
            f" for every sample can still learn its way back.{why}",
            ctx.layer_overrides({ctx.activation_at(w): "leaky_relu" for w in targets}, "activation"),
            ["dead", "collapsed", *(["vanishing"] if narrow else [])],
            f"leaky_relu in {ctx.names(targets)}",
        )
    ]


def outlier_statistics(ctx: Context) -> list[Advice]:
    stats = [w for w, f in ctx.states.get("nonfinite", []) if "moving statistics" in f.detail]
    if not stats or ctx.raw["training"]["on_nonfinite"] == "skip_batch":
        return []
    return [
        Advice(
            f"A batch normalization layer after {ctx.names(stats)} met a batch whose statistics overflow (a sample"
            " far out of range): look for it in the data; meanwhile skip such batches, which keeps the moving"
            " statistics as they were.",
            ["training.on_nonfinite=skip_batch"],
            ["nonfinite"],
            "training.on_nonfinite: skip_batch",
        )
    ]


def batch_normalization(ctx: Context) -> list[Advice]:
    flagged = ctx.flagged_with("vanishing", "exploding", "collapsed", "saturated")
    hidden = [w for w in ctx.watched if not w.output]
    if not flagged or ctx.has_bn or len(ctx.watched) < 3:
        return []
    momentum, why = _settling_momentum(ctx.total_steps())
    layers = []
    for i, spec in enumerate(ctx.source_layers):
        layers.append(spec)
        if isinstance(spec, dict) and spec.get("type") == "dense" and i < ctx.watched[-1].index:
            layers.append({"type": "batch_normalization", **({"momentum": momentum} if why else {})})
    text = yaml.safe_dump(layers, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return [
        Advice(
            "Add batch normalization after each hidden dense layer: it rescales every layer's outputs to mean 0 and"
            f" variance 1 per batch, which keeps the signal, and the gradient, in range at any depth{why}.",
            [f"model.layers={text}"],
            ["vanishing", "exploding", "collapsed", "saturated"],
            f"batch_normalization after {ctx.names(hidden)}",
        )
    ]


NARROW_UNITS = 8  # a relu layer this narrow loses a large share of itself with each unit that dies
KERAS_BN_MOMENTUM = 0.99
SETTLED = 0.05  # at most this share of the moving statistics' initial values left at the end of training


def _settling_momentum(steps: int | None) -> tuple[float, str]:
    """(momentum, why) for the batch normalization layers of a run of ``steps`` updates: Keras's 0.99 (no why)
    where its moving statistics, which inference uses, settle within the run (5% of their initial values or less
    left); else the largest of 0.95, 0.9, 0.8, 0.5 that does."""
    if steps is None or KERAS_BN_MOMENTUM**steps <= SETTLED:
        return KERAS_BN_MOMENTUM, ""
    momentum = next((m for m in (0.95, 0.9, 0.8) if m**steps <= SETTLED), 0.5)
    left = KERAS_BN_MOMENTUM**steps
    why = (
        f"; with momentum {momentum}: at Keras's {KERAS_BN_MOMENTUM} the moving statistics that inference uses would"
        f" still hold {left:.0%} of their initial values after this run's {steps} steps"
    )
    return momentum, why


RULES = (
    input_scaling,
    target_scaling,
    loss_and_output,
    output_for_values,
    single_sample_batches,
    constant_kernel,
    negative_bias,
    initializer_scale,
    heavy_penalty,
    heavy_dropout,
    extreme_class_weight,
    weight_decay,
    saturating_stack,
    momentum,  # the rate's multiplier: a velocity of 1 / (1 - momentum) steps
    learning_rate,
    small_steps,
    leaky_relu,
    clipping,
    outlier_statistics,
    batch_normalization,
)
