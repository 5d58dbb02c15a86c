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

HIGH_LR = 10.0  # a learning rate this many times the optimizer's default is a cause
HIGH_MOMENTUM = 0.95  # SGD momentum at or above this piles up velocity
SIZE_FLAGS = ("vanishing", "exploding", "collapsed", "saturated", "nonfinite", "dead")


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
    """Relu layers whose biases start negative: every layer that does, in one item."""
    if not ctx.flagged_with("dead", "collapsed", "vanishing"):
        return []
    found = []
    for w in ctx.watched:
        init = ctx.layers[w.index].get("bias_initializer") or {}
        value = init.get("value", 0.0) if init.get("name") == "constant" else 0.0
        if w.activation in DEAD_ACTIVATIONS and value < 0:
            found.append((w, value))
    if not found:
        return []
    values = ", ".join(sorted({f"{v:g}" for _, v in found}))
    layers = ctx.names([w for w, _ in found])
    return [
        Advice(
            f"{layers}: biases start at {values} (bias_initializer: constant): most units get a negative input for"
            " every sample, output 0 and pass back no gradient. Start them at 0.",
            ctx.layer_overrides({w.index: "zeros" for w, _ in found}, "bias_initializer"),
            ["dead", "collapsed", "vanishing"],
            f"bias_initializer: zeros in {layers}",
        )
    ]


def initializer_scale(ctx: Context) -> list[Advice]:
    """Initial weights too large or too small, judged by the gain they compound through each stack of layers."""
    flagged = ctx.flagged_with(*SIZE_FLAGS)
    for stack in ctx.stacks():
        gains = [ctx.gain(w) for w in stack]
        total = math.prod(gains)
        worst = max(range(len(stack)), key=lambda k: abs(math.log(gains[k])) if gains[k] > 0 else 0.0)
        off = total >= FAR or total <= 1 / FAR or not 1 / FAR <= gains[worst] <= FAR
        if not off or not any(w in flagged for w in stack) or gains[worst] <= 0:
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
    direction = "grows" if total > 1 else "shrinks"
    init = ctx.layers[w.index]["kernel_initializer"]["name"]
    if len(wrong) > 1 and 1 / FAR <= gains[worst] <= FAR:
        mean = math.exp(sum(math.log(g) for g in gains) / len(gains))
        text = (
            f"{ctx.names(wrong)}: kernel_initializer {init} draws weights at about {mean:.2g}x {rule}'s standard"
            f" deviation each: no layer is far off, but compounded over {len(stack)} layers the signal, and the"
            f" gradient, {direction} {_factor(total)}x on the way through."
        )
    else:
        more = f" (and {len(wrong) - 1} more layer{'s' if len(wrong) > 2 else ''} like it)" if len(wrong) > 1 else ""
        text = (
            f"{w.name}'s kernel_initializer {init} draws weights of std {std:.2g}{more}: too"
            f" {'large' if std > target else 'small'} for a {w.activation} layer with fan-in {fan_in}, where {rule}"
            f" gives {target:.2g}; over {len(stack)} layers the signal, and the gradient, {direction}"
            f" {_factor(total)}x."
        )
    changes = {v.index: ctx.target_scale(v)[0] for v in wrong}
    sets = []
    for target_name in sorted(set(changes.values())):
        sets += ctx.layer_overrides({i: n for i, n in changes.items() if n == target_name}, "kernel_initializer")
    use = " and ".join(sorted(set(changes.values())))
    return Advice(f"{text} Use {use}.", sets, list(SIZE_FLAGS), f"kernel_initializer: {use} in {ctx.names(wrong)}")


def _factor(total: float) -> str:
    return f"{total:.3g}" if total >= 1 else f"1/{1 / total:.3g}"


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


def _default_lr(ctx: Context) -> float | None:
    from dnncli.nn import optimizers

    default = optimizers.REGISTRY.defaults(ctx.raw["optimizer"]["name"]).get("learning_rate")
    return default if isinstance(default, (int, float)) else None


def _other_cause(ctx: Context) -> bool:
    """Whether a cause upstream of the learning rate shows: unscaled inputs, a loss that does not fit the output,
    negative relu biases, or initial weights off."""
    if ctx.raw["data"].get("scale", "none") == "none" and ctx.inputs is not None and ctx.inputs.unscaled:
        return True
    if loss_and_output(ctx) or negative_bias(ctx):
        return True
    return any(not 1 / FAR <= math.prod(ctx.gain(w) for w in stack) <= FAR for stack in ctx.stacks())


def learning_rate(ctx: Context) -> list[Advice]:
    """The rate, where it is the cause: far above the optimizer's default, or the flags came after a sound start."""
    flags = ("exploding", "collapsed", "nonfinite", "dead")
    flagged = ctx.flagged_with(*flags)
    lr = ctx.raw["optimizer"]["learning_rate"]
    if not flagged or not isinstance(lr, (int, float)):
        return []
    default, name = _default_lr(ctx), ctx.raw["optimizer"]["name"]
    if default and lr >= HIGH_LR * default:
        return [
            Advice(
                f"The learning rate {lr:g} is {lr / default:.0f}x {name}'s default ({default:g}): steps that large"
                f" throw the weights out of range ({ctx.names(flagged)}). Start from the default.",
                [f"optimizer.learning_rate={default:g}"],
                list(flags),
                f"optimizer.learning_rate: {default:g}",
            )
        ]
    # dead units are measured over 256 samples: their onset says when they were first counted, not when they died
    start = min(ctx.onsets("exploding", "collapsed", "nonfinite"), default=0)
    if _other_cause(ctx) or start <= ctx.raw["monitor"]["smooth"]:
        return []  # at initialization, or with a cause upstream, the rate is not what to change
    return [
        Advice(
            f"{ctx.names(flagged)} went out of range from step {start}, after a sound start (scaled inputs, initial"
            f" weights in scale): the steps of {name} at {lr:g} are too large for this network. Take a tenth.",
            [f"optimizer.learning_rate={lr / 10:g}"],
            list(flags),
            f"optimizer.learning_rate: {lr / 10:g}",
        )
    ]


def small_steps(ctx: Context) -> list[Advice]:
    """Healthy gradients, tiny updates: the rate is too low (or decays to nothing)."""
    stalled = ctx.states.get("stalled", [])
    lr = ctx.raw["optimizer"]["learning_rate"]
    if not stalled or not isinstance(lr, (int, float)):
        return []
    pace = min(f.peak for _, f in stalled)
    default, name = _default_lr(ctx), ctx.raw["optimizer"]["name"]
    target = default if default and lr < default else lr * 10
    below = f", {default / lr:.0f}x below {name}'s default ({default:g})" if default and lr < default else ""
    return [
        Advice(
            f"Each step moves the weights of {ctx.names([w for w, _ in stalled])} by as little as {pace:.2g} of"
            f" their size, where about 1e-3 is usual: the learning rate {lr:g} is too low{below}, and the loss"
            f" barely moves. Raise it to {target:g}.",
            [f"optimizer.learning_rate={target:g}"],
            ["stalled"],
            f"optimizer.learning_rate: {target:g}",
        )
    ]


def momentum(ctx: Context) -> list[Advice]:
    opt = ctx.raw["optimizer"]
    value = opt.get("momentum") or 0.0
    if opt["name"] != "sgd" or value < HIGH_MOMENTUM or not ctx.flagged_with("exploding", "nonfinite", "dead"):
        return []
    return [
        Advice(
            f"SGD's momentum {value:g} keeps {1 / (1 - value):.0f} steps' worth of velocity: each overshoot adds to"
            " the next. Use 0.9.",
            ["optimizer.momentum=0.9"],
            ["exploding", "nonfinite", "dead"],
            "optimizer.momentum: 0.9",
        )
    ]


def leaky_relu(ctx: Context) -> list[Advice]:
    dead = [w for w in ctx.flagged_with("dead") if w.activation in DEAD_ACTIVATIONS]
    if not dead:
        return []
    return [
        Advice(
            f"leaky_relu in {ctx.names(dead)} passes a small gradient for negative inputs, so a unit that is off"
            " for every sample can still learn its way back.",
            ctx.layer_overrides({ctx.activation_at(w): "leaky_relu" for w in dead}, "activation"),
            ["dead", "collapsed"],
            f"leaky_relu in {ctx.names(dead)}",
        )
    ]


def clipping(ctx: Context) -> list[Advice]:
    flagged = ctx.flagged_with("exploding", "nonfinite")
    opt = ctx.raw["optimizer"]
    if not flagged or any(opt.get(k) is not None for k in ("clipnorm", "clipvalue", "global_clipnorm")):
        return []
    return [
        Advice(
            f"Clip each gradient's norm ({ctx.names(flagged)} grew past range): this bounds every step, but it"
            " removes no cause above; check that the flags clear rather than turn into a collapse.",
            ["optimizer.clipnorm=1.0"],
            ["exploding", "nonfinite"],
            "optimizer.clipnorm: 1.0",
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
    layers = []
    for i, spec in enumerate(ctx.source_layers):
        layers.append(spec)
        if isinstance(spec, dict) and spec.get("type") == "dense" and i < ctx.watched[-1].index:
            layers.append({"type": "batch_normalization"})
    text = yaml.safe_dump(layers, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return [
        Advice(
            "Add batch normalization after each hidden dense layer: it rescales every layer's outputs to mean 0 and"
            " variance 1 per batch, which keeps the signal, and the gradient, in range at any depth.",
            [f"model.layers={text}"],
            ["vanishing", "exploding", "collapsed", "saturated"],
            f"batch_normalization after {ctx.names(hidden)}",
        )
    ]


RULES = (
    input_scaling,
    loss_and_output,
    negative_bias,
    initializer_scale,
    saturating_stack,
    momentum,  # the rate's multiplier: a velocity of 1 / (1 - momentum) steps
    learning_rate,
    small_steps,
    leaky_relu,
    clipping,
    outlier_statistics,
    batch_normalization,
)
