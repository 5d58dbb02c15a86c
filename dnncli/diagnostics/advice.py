"""Advice from the network as a whole: the causes the config and the data show, each with the change that applies it.

Every item names what in the config (or the data) causes the raised flags,
and carries the exact ``--set`` overrides that apply it. The items come in the
order a teacher would try them: a cause upstream of the others first (the
inputs, the loss against the output, the initial weights judged by the gain
they compound through the stack), remedies that bound the symptom (clipping,
skipped batches, batch normalization) last; a learning-rate item only where
the rate is the cause. ``--try-advice`` then ranks them by what they do. An
item whose overrides would leave the resolved config as it is (the config has
it already) is never given. The rules themselves are in ``remedies``.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dnncli.diagnostics.rules import FlagState, WatchedLayer, layer_span

RELU_LIKE = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish")
FAR = 2.0  # an initial gain this many times off He's or Glorot's (either way), over the stack, is a cause
LONG_COMMAND = 200  # overrides longer than this are applied with --write-config, not pasted


@dataclass
class Advice:
    """One thing to change: why, the overrides that apply it, the flags it addresses and, in a few words, what."""

    text: str
    set: list[str]
    flags: list[str] = field(default_factory=list)
    change: str = ""  # "he_normal in dense to dense_14": what --write-config writes, said short

    def command_line(self) -> str:
        return " ".join(f"--set {shlex.quote(o)}" for o in self.set)

    @property
    def pasteable(self) -> bool:
        """Whether the overrides make a command line a person would paste (a whole new layer list is not)."""
        return len(self.command_line()) <= LONG_COMMAND

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "set": self.set,
            "flags": self.flags,
            "command": self.command_line(),
            "change": self.change,
            "pasteable": self.pasteable,
        }


@dataclass(frozen=True)
class InputStats:
    """What the advice needs to know of the training inputs, as the network receives them."""

    max_abs: float  # the largest magnitude of any input
    spread: float  # the largest feature's standard deviation over the smallest non-zero one
    constant: int  # features with one value only
    features: int

    @classmethod
    def of(cls, x) -> InputStats | None:
        x = np.asarray(x)
        if x.size == 0 or x.ndim == 0:
            return None
        x = x.reshape(len(x), -1)
        with np.errstate(all="ignore"):
            std = x.std(axis=0, dtype=np.float64)
            max_abs = float(np.nanmax(np.abs(x)))
        live = std[std > 0]
        spread = float(live.max() / live.min()) if live.size else 1.0
        return cls(max_abs, spread, int((std == 0).sum()), x.shape[1])

    @property
    def unscaled(self) -> bool:
        """Large magnitudes, or features on very different scales."""
        return self.max_abs > 20.0 or self.spread > 100.0

    def describe(self) -> str:
        parts = [f"values up to {self.max_abs:.3g}"]
        if self.spread > 100.0:
            parts.append(f"feature spreads {self.spread:.3g}x apart")
        if self.constant:
            parts.append(f"{self.constant} constant column{'s' if self.constant > 1 else ''}")
        return ", ".join(parts)


@dataclass(frozen=True)
class TargetStats:
    """The regression targets, as the network is trained on them (after ``target_scale``)."""

    low: float
    high: float
    std: float

    @classmethod
    def of(cls, y) -> TargetStats | None:
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0 or not np.isfinite(y).all():
            return None
        return cls(float(y.min()), float(y.max()), float(y.std()))

    @property
    def unscaled(self) -> bool:
        return self.std > 10.0 or max(abs(self.low), abs(self.high)) > 100.0


@dataclass(frozen=True)
class DataStats:
    """What the advice knows of the training data: the inputs where unscaled, the targets of a regression."""

    inputs: InputStats | None = None
    targets: TargetStats | None = None
    samples: int | None = None  # training samples (validation split off): the steps an epoch takes

    @classmethod
    def of(cls, scale: str, loss, x, y) -> DataStats:
        """``scale``: the config's ``data.scale``; the inputs are judged only where they go in unscaled."""
        inputs = InputStats.of(x) if scale == "none" else None
        return cls(inputs, None if loss.classifies else TargetStats.of(y), len(x))


@dataclass
class Subject:
    """The network the advice is about, as the experiment floor hands it down: its config resolved (every default
    filled in) and as written, its model with the initial weights, and a test of whether overrides change it."""

    resolved: dict
    written: dict
    model: object  # a built Sequential, initial weights drawn
    changes: Callable[[list[str]], bool]  # would these --set overrides change the resolved config?


def names(layers: list[WatchedLayer], watched: list[WatchedLayer]) -> str:
    return layer_span([w.name for w in layers], [w.name for w in watched])


class Context:
    """What the rules read: the config as written and as resolved, the data, each dense layer's initial scale."""

    def __init__(
        self,
        subject: Subject,
        raised: list[tuple[WatchedLayer, FlagState]],
        watched: list[WatchedLayer],
        data: DataStats | None,
    ):
        self.raw = subject.resolved
        self.source_layers = subject.written.get("model", {}).get("layers", self.raw["model"]["layers"])
        self.layers = self.raw["model"]["layers"]
        self.watched = watched
        self.inputs = data.inputs if data is not None else None
        self.targets = data.targets if data is not None else None
        self.samples = data.samples if data is not None else None
        self.states: dict[str, list[tuple[WatchedLayer, FlagState]]] = {}
        for w, f in raised:
            if not f.transient:  # the initial weights settling: no cause to treat
                self.states.setdefault(f.name, []).append((w, f))
        model = subject.model
        self.scale = {}  # index -> (std of the initial kernel, fan_in, fan_out)
        for w in watched:
            kernel = model.layers[w.index].params["kernel"]
            self.scale[w.index] = (float(kernel.std(dtype="float64")), kernel.shape[0], kernel.shape[1])
        self.has_bn = any(spec["type"] == "batch_normalization" for spec in self.layers)
        self.layer_names = [layer.name for layer in model.layers]

    def total_steps(self) -> int | None:
        """The updates the config's training makes (epochs x steps an epoch), where the samples are known."""
        if not self.samples:
            return None
        t = self.raw["training"]
        batch = {"batch": self.samples, "stochastic": 1}.get(t["batching"], t["batch_size"])
        return t["epochs"] * math.ceil(self.samples / batch)

    def flagged_with(self, *flags) -> list[WatchedLayer]:
        out = {w.index: w for name in flags for w, _ in self.states.get(name, [])}
        return [out[i] for i in sorted(out)]

    def onsets(self, *flags) -> list[int]:
        return [f.onset_step for name in flags for _, f in self.states.get(name, [])]

    def names(self, layers: list[WatchedLayer]) -> str:
        return names(layers, self.watched)

    def target_scale(self, w: WatchedLayer) -> tuple[str, str, float]:
        """(initializer name, whose rule, the std it gives) the layer's activation calls for."""
        _, fan_in, fan_out = self.scale[w.index]
        if w.activation in RELU_LIKE:
            if w.activation == "selu":
                return "lecun_normal", "LeCun", math.sqrt(1.0 / fan_in)
            return "he_normal", "He", math.sqrt(2.0 / fan_in)
        return "glorot_uniform", "Glorot", math.sqrt(2.0 / (fan_in + fan_out))

    def gain(self, w: WatchedLayer) -> float:
        std, _, _ = self.scale[w.index]
        return std / self.target_scale(w)[2]

    def stacks(self) -> list[list[WatchedLayer]]:
        """The watched layers in runs that no batch normalization separates: a gain compounds within a run."""
        runs: list[list[WatchedLayer]] = []
        for w in self.watched:
            between = self.layers[runs[-1][-1].index + 1 : w.index] if runs else []
            if runs and not any(spec["type"] == "batch_normalization" for spec in between):
                runs[-1].append(w)
            else:
                runs.append([w])
        return runs

    def activation_at(self, w: WatchedLayer) -> int:
        """The layer whose ``activation`` key sets ``w``'s activation: itself, or the activation layer after it."""
        if self.layers[w.index]["activation"]["name"] != "linear":
            return w.index
        j = w.index + 1
        while self.layers[j]["type"] != "activation":
            j += 1
        return j

    def layer_overrides(self, changes: dict[int, object], key: str) -> list[str]:
        """``model.layers.K.key=value`` for each change; one ``*`` override where that is shorter and exact."""
        have = [i for i, spec in enumerate(self.source_layers) if isinstance(spec, dict) and key in spec]
        values = {flow(v) for v in changes.values()}
        if len(changes) >= 3 and len(values) == 1:
            restore = [i for i in have if i not in changes]
            extra = [i for i in changes if i not in have]
            if len(restore) + len(extra) + 1 < len(changes):
                value = values.pop()
                out = [f"model.layers.*.{key}={value}"]
                out += [f"model.layers.{i}.{key}={flow(self.source_layers[i][key])}" for i in restore]
                out += [f"model.layers.{i}.{key}={value}" for i in sorted(extra)]
                return out
        return [f"model.layers.{i}.{key}={flow(v)}" for i, v in sorted(changes.items())]


def flow(value) -> str:
    """A value as one line of YAML, as ``--set`` takes it (no anchors, keys in the config's order)."""
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True

    if isinstance(value, str):
        return value
    return yaml.dump(value, Dumper=NoAliases, default_flow_style=True, sort_keys=False, width=10**6).strip()


def advise(
    subject: Subject,
    raised: list[tuple[WatchedLayer, FlagState]],
    watched: list[WatchedLayer],
    data: DataStats | None = None,
) -> list[Advice]:
    """Advice for the flags ``raised`` on ``subject``'s network, causes first; empty when nothing is wrong."""
    from dnncli.diagnostics import remedies

    ctx = Context(subject, raised, watched, data)
    items: list[Advice] = []
    for rule in remedies.RULES:
        items += [a for a in rule(ctx) if a.set]
    return [a for a in _merge(items) if subject.changes(a.set)]  # not what the config has already


def _merge(items: list[Advice]) -> list[Advice]:
    out: list[Advice] = []
    for a in items:
        same = next((b for b in out if b.set == a.set), None)
        if same is None:
            out.append(a)
        else:
            same.flags += [f for f in a.flags if f not in same.flags]
    return out
