"""Advice tied to the raised flags and to the config: causes the config shows, each with the override that applies it.

Every item names what in the config causes the flag where the config shows
it (a constant negative bias, a kernel initializer far from He or Glorot for
the layer's fan-in, a learning rate far above the optimizer's default, deep
stacks of saturating activations), and carries the exact ``--set`` overrides
that apply it. An item whose overrides would leave the resolved config as it
is (the config has it already) is never given.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field

import yaml

from dnncli.diagnostics.rules import DEAD_ACTIVATIONS, SATURATING, FlagState, WatchedLayer
from dnncli.errors import DnnError

RELU_LIKE = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish")
FAR = 2.0  # an initializer's scale this many times off He's or Glorot's (either way) is a cause
HIGH_LR = 10.0  # a learning rate this many times the optimizer's default is a cause


@dataclass
class Advice:
    """One thing to change: why, the overrides that apply it, and the flags it addresses."""

    text: str
    set: list[str]
    flags: list[str] = field(default_factory=list)

    def command_line(self) -> str:
        return " ".join(f"--set {shlex.quote(o)}" for o in self.set)

    def to_dict(self) -> dict:
        return {"text": self.text, "set": self.set, "flags": self.flags, "command": self.command_line()}


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def _flow(value) -> str:
    """A value as one line of YAML, as ``--set`` takes it (no anchors, keys in the config's order)."""
    if isinstance(value, str):
        return value
    return yaml.dump(value, Dumper=_NoAliases, default_flow_style=True, sort_keys=False, width=10**6).strip()


def _names(layers: list[WatchedLayer]) -> str:
    if len(layers) > 4:
        return f"{layers[0].name} to {layers[-1].name} ({len(layers)} layers)"
    return ", ".join(w.name for w in layers)


class _Context:
    """What the rules read: the config as written and as resolved, and each dense layer's initial scale."""

    def __init__(self, config, raised: list[tuple[WatchedLayer, FlagState]], watched: list[WatchedLayer]):
        self.config = config
        self.raw = config.raw
        source = config.source if config.source is not None else config.raw
        self.source_layers = source.get("model", {}).get("layers", self.raw["model"]["layers"])
        self.layers = self.raw["model"]["layers"]
        self.watched = watched
        self.by_flag: dict[str, list[WatchedLayer]] = {}
        for w, f in raised:
            self.by_flag.setdefault(f.name, [])
            if w not in self.by_flag[f.name]:
                self.by_flag[f.name].append(w)
        self.flag_states: dict[int, list[FlagState]] = {}
        for w, f in raised:
            self.flag_states.setdefault(w.index, []).append(f)
        model = config.build_model()
        self.scale = {}  # index -> (std of the initial kernel, fan_in, fan_out)
        for w in watched:
            kernel = model.layers[w.index].params["kernel"]
            self.scale[w.index] = (float(kernel.std(dtype="float64")), kernel.shape[0], kernel.shape[1])
        self.has_bn = any(spec["type"] == "batch_normalization" for spec in self.layers)

    def flagged_with(self, *names) -> list[WatchedLayer]:
        out = []
        for name in names:
            out += [w for w in self.by_flag.get(name, []) if w not in out]
        return sorted(out, key=lambda w: w.index)

    def target_scale(self, w: WatchedLayer) -> tuple[str, str, float]:
        """(initializer name, whose rule, the std it gives) the layer's activation calls for."""
        _, fan_in, fan_out = self.scale[w.index]
        if w.activation in RELU_LIKE:
            return "he_normal", "He", math.sqrt(2.0 / fan_in)
        return "glorot_uniform", "Glorot", math.sqrt(2.0 / (fan_in + fan_out))

    def layer_overrides(self, changes: dict[int, object], key: str) -> list[str]:
        """``model.layers.K.key=value`` for each change; one ``*`` override where that is shorter and exact."""
        have = [i for i, spec in enumerate(self.source_layers) if isinstance(spec, dict) and key in spec]
        values = {_flow(v) for v in changes.values()}
        if len(changes) >= 3 and len(values) == 1:
            restore = [i for i in have if i not in changes]
            extra = [i for i in changes if i not in have]
            if len(restore) + len(extra) + 1 < len(changes):
                value = values.pop()
                out = [f"model.layers.*.{key}={value}"]
                out += [f"model.layers.{i}.{key}={_flow(self.source_layers[i][key])}" for i in restore]
                out += [f"model.layers.{i}.{key}={value}" for i in sorted(extra)]
                return out
        return [f"model.layers.{i}.{key}={_flow(v)}" for i, v in sorted(changes.items())]


def advise(config, raised: list[tuple[WatchedLayer, FlagState]], watched: list[WatchedLayer]) -> list[Advice]:
    """Advice for the flags ``raised`` on ``config``'s network; empty when nothing was raised."""
    if not raised:
        return []
    ctx = _Context(config, raised, watched)
    items: list[Advice] = []
    for rule in (
        _negative_bias,
        _initializer_scale,
        _saturating_stack,
        _learning_rate,
        _leaky_relu,
        _clipping,
        _input_scaling,
        _outlier_statistics,
        _batch_normalization,
    ):
        items += [a for a in rule(ctx) if a.set]
    return _keep_changes(config, _merge(items))


def _negative_bias(ctx: _Context) -> list[Advice]:
    out = []
    for w in ctx.flagged_with("dead", "collapsed"):
        init = ctx.layers[w.index].get("bias_initializer") or {}
        value = init.get("value", 0.0) if init.get("name") == "constant" else 0.0
        if w.activation in DEAD_ACTIVATIONS and value < 0:
            out.append(
                Advice(
                    f"{w.name}'s biases start at {value:g} (bias_initializer: constant {value:g}): most of its units"
                    " get a negative input for every sample, output 0 and pass back no gradient. Start them at 0.",
                    [f"model.layers.{w.index}.bias_initializer=zeros"],
                    ["dead", "collapsed"],
                )
            )
    return out


def _initializer_scale(ctx: _Context) -> list[Advice]:
    flagged = ctx.flagged_with("vanishing", "exploding", "collapsed", "saturated", "nonfinite", "dead")
    off = []
    for w in ctx.watched:
        std, fan_in, _ = ctx.scale[w.index]
        name, rule, target = ctx.target_scale(w)
        if std > 0 and not 1 / FAR <= std / target <= FAR:
            off.append((w, std, name, rule, target, fan_in))
    if not any(w in flagged for w, *_ in off):
        return []
    w, std, name, rule, target, fan_in = next(o for o in off if o[0] in flagged)
    init = ctx.layers[w.index]["kernel_initializer"]["name"]
    direction = "small" if std < target else "large"
    more = f" (and {len(off) - 1} more layer{'s' if len(off) > 2 else ''} like it)" if len(off) > 1 else ""
    text = (
        f"{w.name}'s kernel_initializer {init} draws weights of std {std:.2g}{more}: too {direction} for a"
        f" {w.activation} layer with fan-in {fan_in}, where {rule} gives {target:.2g}; the signal, and the gradient,"
        f" {'shrinks' if std < target else 'grows'} at every layer. Use {name}."
    )
    changes = {w.index: name for w, _, name, *_ in off}
    sets = []
    for target_name in sorted(set(changes.values())):
        sets += ctx.layer_overrides({i: n for i, n in changes.items() if n == target_name}, "kernel_initializer")
    return [Advice(text, sets, ["vanishing", "exploding", "collapsed", "saturated", "nonfinite", "dead"])]


def _saturating_stack(ctx: _Context) -> list[Advice]:
    flagged = ctx.flagged_with("vanishing", "saturated")
    hidden = [w for w in ctx.watched if not w.output and w.activation in SATURATING]
    if not flagged or len(hidden) < 3 or not any(w in hidden for w in flagged):
        return []
    kinds = sorted({w.activation for w in hidden})
    bound = "0.25" if "sigmoid" in kinds else "1"
    text = (
        f"{len(hidden)} {'/'.join(kinds)} hidden layers in this network: the derivative is at most {bound}, and"
        " each layer multiplies the gradient by it on the way back. Use relu, with He initialization, in the hidden"
        " layers."
    )
    # a dense layer followed by an activation layer gets the new activation on the activation layer
    act_at = {}
    for w in hidden:
        spec = ctx.layers[w.index]
        act_at[w.index if spec["activation"]["name"] != "linear" else _activation_layer(ctx, w.index)] = "relu"
    sets = ctx.layer_overrides(act_at, "activation")
    sets += ctx.layer_overrides({w.index: "he_normal" for w in hidden}, "kernel_initializer")
    return [Advice(text, sets, ["vanishing", "saturated"])]


def _activation_layer(ctx: _Context, index: int) -> int:
    j = index + 1
    while ctx.layers[j]["type"] != "activation":
        j += 1
    return j


def _optimizer_default_lr(ctx: _Context) -> float | None:
    from dnncli.nn import optimizers

    default = optimizers.REGISTRY.defaults(ctx.raw["optimizer"]["name"]).get("learning_rate")
    return default if isinstance(default, (int, float)) else None


def _learning_rate(ctx: _Context) -> list[Advice]:
    flagged = ctx.flagged_with("exploding", "collapsed", "nonfinite", "dead")
    lr = ctx.raw["optimizer"]["learning_rate"]
    if not flagged or not isinstance(lr, (int, float)):
        return []
    default = _optimizer_default_lr(ctx)
    name = ctx.raw["optimizer"]["name"]
    if default and lr >= HIGH_LR * default:
        return [
            Advice(
                f"The learning rate {lr:g} is {lr / default:.0f}x {name}'s default ({default:g}): large steps throw the"
                f" weights out of range ({_names(flagged)}). Start from the default.",
                [f"optimizer.learning_rate={default:g}"],
                ["exploding", "collapsed", "nonfinite", "dead"],
            )
        ]
    if ctx.flagged_with("exploding", "nonfinite"):
        return [
            Advice(
                f"Lower the learning rate ({lr:g} now): smaller steps keep the weights, and the gradients, in range.",
                [f"optimizer.learning_rate={lr / 10:g}"],
                ["exploding", "nonfinite"],
            )
        ]
    return []


def _leaky_relu(ctx: _Context) -> list[Advice]:
    dead = [w for w in ctx.flagged_with("dead") if w.activation in DEAD_ACTIVATIONS]
    if not dead:
        return []
    changes = {}
    for w in dead:
        spec = ctx.layers[w.index]
        at = w.index if spec["activation"]["name"] != "linear" else _activation_layer(ctx, w.index)
        changes[at] = "leaky_relu"
    return [
        Advice(
            f"leaky_relu in {_names(dead)} passes a small gradient for negative inputs, so a unit that is off for every"
            " sample can still learn its way back.",
            ctx.layer_overrides(changes, "activation"),
            ["dead", "collapsed"],
        )
    ]


def _clipping(ctx: _Context) -> list[Advice]:
    flagged = ctx.flagged_with("exploding", "nonfinite")
    opt = ctx.raw["optimizer"]
    if not flagged or any(opt.get(k) is not None for k in ("clipnorm", "clipvalue", "global_clipnorm")):
        return []
    return [
        Advice(
            f"Clip each gradient's norm ({_names(flagged)} grew past range): this bounds every step, but it does not"
            " remove a cause above; check that the flags clear rather than turn into a collapse.",
            ["optimizer.clipnorm=1.0"],
            ["exploding", "nonfinite"],
        )
    ]


def _input_scaling(ctx: _Context) -> list[Advice]:
    flagged = ctx.flagged_with("exploding", "saturated", "nonfinite")
    if not flagged or ctx.raw["data"].get("scale", "none") != "none":
        return []
    return [
        Advice(
            "The inputs are not scaled (data.scale: none): large raw values push the first layers out of range."
            " Standardize them (fitted on the training split).",
            ["data.scale=standardize"],
            ["exploding", "saturated", "nonfinite"],
        )
    ]


def _outlier_statistics(ctx: _Context) -> list[Advice]:
    stats = [w for w in ctx.flagged_with("nonfinite") if "moving statistics" in _detail(ctx, w, "nonfinite")]
    if not stats or ctx.raw["training"]["on_nonfinite"] == "skip_batch":
        return []
    return [
        Advice(
            f"A batch normalization layer after {_names(stats)} met a batch whose statistics overflow (a sample far"
            " out of range): look for it in the data; meanwhile skip such batches, which keeps the moving statistics"
            " as they were.",
            ["training.on_nonfinite=skip_batch"],
            ["nonfinite"],
        )
    ]


def _detail(ctx: _Context, w: WatchedLayer, flag: str) -> str:
    return next((f.detail for f in ctx.flag_states.get(w.index, []) if f.name == flag), "")


def _batch_normalization(ctx: _Context) -> list[Advice]:
    flagged = ctx.flagged_with("vanishing", "exploding", "collapsed", "saturated")
    if not flagged or ctx.has_bn or len(ctx.watched) < 3:
        return []
    # equal specs as one object: YAML writes it once, with an anchor, and aliases after (a short override)
    seen: dict[str, object] = {}
    layers = []
    bn = {"type": "batch_normalization"}
    for i, spec in enumerate(ctx.source_layers):
        layers.append(seen.setdefault(_flow(spec), spec))
        is_hidden_dense = isinstance(spec, dict) and spec.get("type") == "dense" and i < ctx.watched[-1].index
        if is_hidden_dense:
            layers.append(bn)
    text = yaml.safe_dump(layers, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return [
        Advice(
            "Add batch normalization after each hidden dense layer: it rescales every layer's outputs to mean 0 and"
            " variance 1 per batch, which keeps the signal, and the gradient, in range at any depth.",
            [f"model.layers={text}"],
            ["vanishing", "exploding", "collapsed", "saturated"],
        )
    ]


def _merge(items: list[Advice]) -> list[Advice]:
    out: list[Advice] = []
    for a in items:
        same = next((b for b in out if b.set == a.set), None)
        if same is None:
            out.append(a)
        else:
            same.flags += [f for f in a.flags if f not in same.flags]
    return out


def _keep_changes(config, items: list[Advice]) -> list[Advice]:
    """Drop the items that would leave the resolved config as it is (the config has them already)."""
    kept = []
    for a in items:
        try:
            changed = config.with_overrides(a.set).raw != config.raw
        except DnnError:
            changed = False
        if changed:
            kept.append(a)
    return kept
