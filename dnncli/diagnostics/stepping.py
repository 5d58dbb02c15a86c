"""The advice rules about the optimizer and the penalties: the rate, its schedule, momentum, epsilon, clipping,
weight decay and regularization, each only where the network shows it is the cause."""

from __future__ import annotations

import math

from dnncli.diagnostics.advice import FAR, Advice, Context

HIGH_LR = 10.0  # a learning rate this many times the optimizer's default is a cause
HIGH_MOMENTUM = 0.95  # SGD momentum at or above this piles up velocity
USUAL_RATIO = 1e-3  # the usual |delta W| / |W| of a step (Karpathy, CS231n)
TINY_CLIP = 1e-3  # a clip at this or below bounds every step to almost nothing
BIG_EPSILON = 1e-3  # an adaptive optimizer's epsilon at this or above swamps the gradient's scale
HEAVY_PENALTY = 0.1  # an l1 or l2 factor this large (10x Keras's default) outweighs the data loss
HEAVY_DROPOUT = 0.6  # a dropout rate above the usual 0.1 to 0.5: most of the signal gone at every step
USUAL_DROPOUT = 0.2
EXTREME_CLASS_WEIGHT = 100.0  # one class's weight this many times another's: its steps swamp everything
HEAVY_DECAY = 0.01  # weight decay removing this share of the weights each step (decay x rate)


def _default_lr(ctx: Context) -> float | None:
    from dnncli.nn import optimizers

    default = optimizers.REGISTRY.defaults(ctx.raw["optimizer"]["name"]).get("learning_rate")
    return default if isinstance(default, (int, float)) else None


def _other_cause(ctx: Context) -> bool:
    """Whether a cause upstream of the learning rate shows: unscaled inputs, a loss that does not fit the output,
    negative relu biases, or initial weights off."""
    if ctx.raw["data"].get("scale", "none") == "none" and ctx.inputs is not None and ctx.inputs.unscaled:
        return True
    from dnncli.diagnostics.remedies import constant_kernel, loss_and_output, negative_bias

    if loss_and_output(ctx) or negative_bias(ctx) or constant_kernel(ctx) or heavy_penalty(ctx) or weight_decay(ctx):
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
    """Healthy gradients, tiny updates: what in the optimizer makes the steps small, the rate last."""
    stalled = ctx.states.get("stalled", [])
    if not stalled:
        return []
    pace = min(f.peak for _, f in stalled)
    where = ctx.names([w for w, _ in stalled])
    opt, name = ctx.raw["optimizer"], ctx.raw["optimizer"]["name"]
    moves = f"Each step moves the weights of {where} by as little as {pace:.2g} of their size (about 1e-3 is usual)"
    for key in ("clipvalue", "clipnorm", "global_clipnorm"):
        clip = opt.get(key)
        if clip is not None and clip <= TINY_CLIP:
            text = f"{moves}: {key} {clip:g} cuts every step to that. Remove the clip."
            return [_item(text, f"optimizer.{key}=null")]
    epsilon = opt.get("epsilon")
    if epsilon is not None and epsilon >= BIG_EPSILON:
        default = _default(ctx, "epsilon")
        text = (
            f"{moves}: {name}'s epsilon {epsilon:g} is added to the gradient's running scale, so every step is"
            f" divided by at least that. Use its default ({default:g})."
        )
        return [_item(text, f"optimizer.epsilon={default:g}")]
    lr = opt["learning_rate"]
    if isinstance(lr, dict):
        return _schedule(ctx, lr, moves, min(f.onset_step for _, f in stalled))
    if not isinstance(lr, (int, float)):
        return []
    # the rate that would give the usual ratio, to a power of ten, at least ten times more
    factor = 10 ** max(1, round(math.log10(USUAL_RATIO / pace))) if pace > 0 else 10
    target = float(f"{lr * factor:.1g}")
    default = _default_lr(ctx)
    below = f", {default / lr:.0f}x below {name}'s default ({default:g})" if default and lr < default else ""
    return [
        _item(
            f"{moves}: the learning rate {lr:g} is too low{below}, and the loss barely moves. Raise it to {target:g}.",
            f"optimizer.learning_rate={target:g}",
        )
    ]


def _item(text: str, override: str) -> Advice:
    key, value = override.split("=", 1)
    return Advice(text, [override], ["stalled"], f"{key.split('.', 1)[1]}: {value}")


def _default(ctx: Context, key: str):
    from dnncli.nn import optimizers

    return optimizers.REGISTRY.defaults(ctx.raw["optimizer"]["name"]).get(key)


def _schedule(ctx: Context, spec: dict, moves: str, step: int) -> list[Advice]:
    """A schedule that has decayed the rate to next to nothing by the time the steps stalled."""
    from dnncli.nn import schedules

    schedule = schedules.get(spec)
    start, now = schedule(0), schedule(max(step - 1, 0))
    initial = spec.get("initial_learning_rate", start)
    if not isinstance(initial, (int, float)) or not start > 0 or now > 0.1 * start:
        return []
    text = (
        f"{moves}: the {spec['name']} schedule has taken the learning rate from {start:g} to {now:.2g} by step"
        f" {step}. Use a schedule that decays over the whole run (a larger decay_steps), or the constant rate."
    )
    return [_item(text, f"optimizer.learning_rate={initial:g}")]


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


def heavy_penalty(ctx: Context) -> list[Advice]:
    """An l1 or l2 factor so large the penalty outweighs the data loss: the weights are crushed toward zero."""
    if not ctx.flagged_with("vanishing", "dead", "collapsed", "stalled", "saturated"):
        return []
    heavy = {}
    for w in ctx.watched:
        reg = ctx.layers[w.index].get("kernel_regularizer") or {}
        factor = max((reg.get(k) or 0.0) for k in ("l1", "l2")) if isinstance(reg, dict) else 0.0
        if factor >= HEAVY_PENALTY:
            heavy[w.index] = (w, reg, factor)
    if not heavy:
        return []
    worst = max(f for _, _, f in heavy.values())
    layers = ctx.names([w for w, _, _ in heavy.values()])
    changes = {i: {**reg, **{k: 1e-4 for k in ("l1", "l2") if reg.get(k)}} for i, (_, reg, _) in heavy.items()}
    return [
        Advice(
            f"{layers}: kernel_regularizer factors up to {worst:g} ({worst / 0.01:.0f}x Keras's default 0.01): the"
            " penalty outweighs the data loss and crushes the weights toward 0, and the gradient with them. Use"
            " 1e-4.",
            ctx.layer_overrides(changes, "kernel_regularizer"),
            ["vanishing", "dead", "collapsed", "stalled", "saturated"],
            f"kernel_regularizer factor 1e-4 in {layers}",
        )
    ]


def heavy_dropout(ctx: Context) -> list[Advice]:
    """Dropout that drops most units: the layers after it see a few survivors, scaled up, a new handful each step."""
    if not ctx.flagged_with("vanishing", "exploding", "dead", "collapsed", "stalled", "saturated"):
        return []
    heavy = {i: spec["rate"] for i, spec in enumerate(ctx.layers) if spec["type"] == "dropout"}
    heavy = {i: rate for i, rate in heavy.items() if rate >= HEAVY_DROPOUT}
    if not heavy:
        return []
    worst = max(heavy.values())
    names = ", ".join(ctx.layer_names[i] for i in heavy)
    return [
        Advice(
            f"dropout rates up to {worst:g} ({names}): {worst:.0%} of the units are dropped at every step, and each"
            f" survivor scaled by {1 / (1 - worst):.3g}: the layers after it learn from noise. Use {USUAL_DROPOUT}"
            " (0.1 to 0.5 is usual).",
            [f"model.layers.{i}.rate={USUAL_DROPOUT}" for i in heavy],
            ["vanishing", "exploding", "dead", "collapsed", "stalled", "saturated"],
            f"dropout rate {USUAL_DROPOUT} in {names}",
        )
    ]


def extreme_class_weight(ctx: Context) -> list[Advice]:
    """Class weights so unequal that one class's gradient dwarfs the rest: a step many times the rate's size."""
    weights = ctx.raw["training"].get("class_weight")
    if not isinstance(weights, dict) or len(weights) < 2:
        return []
    low, high = min(weights.values()), max(weights.values())
    if low <= 0 or high / low < EXTREME_CLASS_WEIGHT:
        return []
    if not ctx.flagged_with("vanishing", "exploding", "saturated", "dead", "collapsed"):
        return []
    return [
        Advice(
            f"class_weight from {low:g} to {high:g}: the heaviest class's samples count {high / low:,.0f}x the"
            " lightest's, so each of them moves the weights that many steps' worth, and the network swings to a"
            " bound. Use class_weight: balanced (weights from the class counts), or weights within a factor of 10.",
            ["training.class_weight=balanced"],
            ["vanishing", "exploding", "saturated", "dead", "collapsed"],
            "class_weight: balanced",
        )
    ]


def weight_decay(ctx: Context) -> list[Advice]:
    """Weight decay that removes a large share of every weight at every step."""
    opt = ctx.raw["optimizer"]
    decay, lr = opt.get("weight_decay") or 0.0, opt["learning_rate"]
    if not isinstance(lr, (int, float)) or decay * lr < HEAVY_DECAY:
        return []
    if not ctx.flagged_with("vanishing", "dead", "collapsed", "stalled", "saturated"):
        return []
    default = _default(ctx, "weight_decay") or 1e-4
    return [
        Advice(
            f"{opt['name']}'s weight_decay {decay:g} at the rate {lr:g} removes {decay * lr:.0%} of every weight at"
            f" every step: the weights shrink to nothing faster than the gradient can grow them. Use {default:g}.",
            [f"optimizer.weight_decay={default:g}"],
            ["vanishing", "dead", "collapsed", "stalled", "saturated"],
            f"optimizer.weight_decay: {default:g}",
        )
    ]
