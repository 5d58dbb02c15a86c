"""The gradient monitor: per-layer statistics while training, flags, and advice.

One monitor serves ``dnn train`` (its live table and ``gradients.csv``) and
``dnn inspect-gradients``. Every step it takes the L2 norm of each dense
kernel's gradient (one dot product per layer); every ``every`` steps it also
records the gradient's mean absolute value and maximum, the weight norm, the
ratio ||dW|| / ||W||, and the layer's activations: mean, standard deviation,
fraction of dead units (relu family: a unit at or below zero for every sample
of the batch, or, for batches under 32 samples, for every sample seen since the
previous record and at least 32 of them: one sample cannot tell a dead unit
from one that is merely off for that input) and fraction of saturated outputs
(sigmoid, tanh: within 1% of a bound).

Flags, each with the numbers that raised it, and their documented thresholds
(all settable under ``monitor:`` in a config):

- ``vanishing``: mean gradient norm below ``vanishing_ratio`` (1e-3) times the
  last dense layer's, or below ``vanishing_floor`` (1e-7);
- ``exploding``: mean gradient norm above ``exploding_norm`` (1e3), or grown
  ``exploding_growth`` (10) times or more since the previous epoch;
- ``dead``: on average more than ``dead_fraction`` (0.5) of the units dead;
- ``saturated``: on average more than ``saturated_fraction`` (0.5) of the outputs saturated;
- ``nonfinite``: NaN or infinity in the layer's activations, gradients or weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from dnncli.errors import DnnError, check_float, check_int, suggest
from dnncli.training import Callback

RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish")
SATURATING = ("sigmoid", "tanh")
FLAGS = ("vanishing", "exploding", "dead", "saturated", "nonfinite")
AUTO_EVERY_PARAMS = 50_000  # models up to this size record every statistic at every step
AUTO_EVERY = 20
DEAD_WINDOW = 32  # samples a dead-unit fraction is measured over, at the least
STEP_FIELDS = (
    "epoch",
    "step",
    "layer_index",
    "layer",
    "grad_norm",
    "grad_mean_abs",
    "grad_max",
    "weight_norm",
    "update_ratio",
    "act_mean",
    "act_std",
    "dead_fraction",
    "saturated_fraction",
)


@dataclass
class MonitorConfig:
    """The ``monitor:`` section: how often to record, and the flags' thresholds."""

    every: int | None = None  # record full statistics every K steps; None: 1 for small models, else 20
    vanishing_ratio: float = 1e-3
    vanishing_floor: float = 1e-7
    exploding_norm: float = 1e3
    exploding_growth: float = 10.0
    dead_fraction: float = 0.5
    saturated_fraction: float = 0.5

    @classmethod
    def resolve(cls, spec) -> dict:
        """Validate a ``monitor:`` mapping and fill in every default."""
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise DnnError(f"monitor must be a mapping. Received: {spec!r}", ("monitor",))
        names = [f.name for f in fields(cls)]
        for key in spec:
            if key not in names:
                raise DnnError(f"monitor has no key {key!r}.{suggest(key, names)}", ("monitor", key))
        out = {}
        for f in fields(cls):
            value = spec.get(f.name, f.default)
            try:
                if f.name == "every":
                    value = None if value is None else check_int(value, "monitor.every")
                elif f.name in ("dead_fraction", "saturated_fraction"):
                    value = check_float(value, f"monitor.{f.name}", 0.0, 1.0)
                else:
                    value = check_float(value, f"monitor.{f.name}", 0.0, low_open=True)
            except DnnError as err:
                raise DnnError(err.message, ("monitor", f.name)) from None
            out[f.name] = value
        return out


@dataclass
class Flag:
    name: str
    detail: str


@dataclass
class LayerSummary:
    """A layer's statistics over a window (an epoch, or an inspection run)."""

    index: int
    name: str
    activation: str
    grad_norm: float = math.nan
    weight_norm: float = math.nan
    dead_fraction: float = math.nan
    saturated_fraction: float = math.nan
    nonfinite: str | None = None
    flags: list[Flag] = field(default_factory=list)


def activation_stats(A: np.ndarray, activation: str) -> tuple[float, float, float, float]:
    """(mean, std, dead fraction, saturated fraction) of a layer's outputs over a batch."""
    mean = float(A.mean(dtype=np.float64))
    std = float(A.std(dtype=np.float64))
    dead = saturated = math.nan
    if activation in RELU_FAMILY:
        dead = float((A.max(axis=0) <= 0).mean())
    if activation == "sigmoid":
        saturated = float(((A < 0.01) | (A > 0.99)).mean())
    elif activation == "tanh":
        saturated = float((np.abs(A) > 0.99).mean())
    return mean, std, dead, saturated


def diagnose(summaries: list[LayerSummary], cfg: dict, previous: dict | None = None) -> None:
    """Set each summary's flags from its numbers; ``previous`` maps layer index to last epoch's grad norm."""
    if not summaries:
        return
    last = summaries[-1].grad_norm
    for s in summaries:
        s.flags = []
        g = s.grad_norm
        if s.nonfinite:
            s.flags.append(Flag("nonfinite", s.nonfinite))
            continue
        if not math.isfinite(g):
            continue
        if g < cfg["vanishing_floor"]:
            s.flags.append(Flag("vanishing", f"gradient norm {g:.2e} < floor {cfg['vanishing_floor']:.0e}"))
        elif s is not summaries[-1] and last > 0 and g / last < cfg["vanishing_ratio"]:
            s.flags.append(
                Flag("vanishing", f"gradient norm {g:.2e} is {g / last:.1e} x the last layer's ({last:.2e})")
            )
        if g > cfg["exploding_norm"]:
            s.flags.append(Flag("exploding", f"gradient norm {g:.2e} > {cfg['exploding_norm']:.0e}"))
        elif previous and previous.get(s.index, 0) > 0 and g / previous[s.index] >= cfg["exploding_growth"]:
            s.flags.append(
                Flag(
                    "exploding",
                    f"gradient norm grew {g / previous[s.index]:.0f}x in an epoch ({previous[s.index]:.2e} -> {g:.2e})",
                )
            )
        if math.isfinite(s.dead_fraction) and s.dead_fraction > cfg["dead_fraction"]:
            s.flags.append(Flag("dead", f"{s.dead_fraction:.0%} of the units output zero for a whole batch"))
        if math.isfinite(s.saturated_fraction) and s.saturated_fraction > cfg["saturated_fraction"]:
            s.flags.append(Flag("saturated", f"{s.saturated_fraction:.0%} of the outputs within 1% of a bound"))


def advice(summaries: list[LayerSummary], config: Mapping) -> list[str]:
    """Plain advice tied to the raised flags and to what the config already does."""
    layers = config["model"]["layers"]
    kinds = {f.name for s in summaries for f in s.flags}
    has_bn = any(layer["type"] == "batch_normalization" for layer in layers)
    opt = config["optimizer"]
    clipped = any(opt.get(k) is not None for k in ("clipnorm", "clipvalue", "global_clipnorm"))
    lr = opt.get("learning_rate")
    n_dense = sum(1 for layer in layers if layer["type"] == "dense")
    out = []

    def layer_list(flag):
        return ", ".join(s.name for s in summaries if any(f.name == flag for f in s.flags))

    def init_name(s):
        return layers[s.index].get("kernel_initializer", {}).get("name", "")

    if "dead" in kinds:
        out.append(
            f"Dead units in {layer_list('dead')}: a relu unit whose input is negative for every sample outputs zero"
            " and passes back no gradient, to its own weights or to the layers before it. Use leaky_relu or elu,"
            " He initialization, a smaller learning rate, and check for large negative biases."
        )
    if "vanishing" in kinds:
        flagged = [s for s in summaries if any(f.name == "vanishing" for f in s.flags)]
        saturating = sorted({s.activation for s in flagged if s.activation in SATURATING})
        if saturating:
            out.append(
                f"Vanishing gradients in {layer_list('vanishing')}: {'/'.join(saturating)} derivatives are at most"
                f" {'0.25' if 'sigmoid' in saturating else '1'} and shrink the gradient at every layer. Use a"
                " non-saturating activation (relu, leaky_relu, elu) in the hidden layers."
            )
        relu_glorot = [s.name for s in flagged if s.activation in RELU_FAMILY and not init_name(s).startswith("he_")]
        if relu_glorot:
            out.append(
                f"Use He initialization (kernel_initializer: he_normal) for the relu layers {', '.join(relu_glorot)}."
            )
        small = [s.name for s in flagged if init_name(s) in ("random_normal", "random_uniform")]
        if small:
            out.append(
                f"{', '.join(small)} start from a small random initializer: use glorot_uniform for sigmoid/tanh"
                " layers and he_normal for relu layers, which keep the signal's variance from layer to layer."
            )
        if not has_bn and "dead" not in kinds:
            out.append("Add batch_normalization layers after the hidden dense layers to keep activations in range.")
        if n_dense > 6:
            out.append(f"The model has {n_dense} dense layers: fewer layers shorten the path the gradient travels.")
    if "exploding" in kinds or "nonfinite" in kinds:
        which = layer_list("exploding") or layer_list("nonfinite")
        if not clipped:
            out.append(f"Exploding gradients in {which}: clip them (optimizer: {{clipnorm: 1.0}}).")
        if isinstance(lr, (int, float)):
            out.append(f"Lower the learning rate (now {lr:g}; try {lr / 10:g}).")
        big = [s.name for s in summaries if init_name(s) in ("random_normal", "random_uniform")]
        if big:
            out.append(
                f"Check the initializers of {', '.join(big)}: he_normal (relu) or glorot_uniform (sigmoid, tanh)."
            )
        if not has_bn:
            out.append("Batch normalization after the dense layers keeps activations, and so gradients, in range.")
    if "saturated" in kinds:
        out.append(
            f"Saturated outputs in {layer_list('saturated')}: use glorot_uniform (Glorot) initialization for sigmoid"
            " and tanh layers, standardize the inputs (data.scale: standardize), or add batch normalization before"
            " them."
        )
    return out


class GradientMonitor(Callback):
    """Per-layer gradient and activation statistics of every dense layer, for ``dnn train`` and inspection."""

    def __init__(self, model, cfg: dict):
        self.cfg = cfg
        self.model = model
        self.layers = [(i, layer) for i, layer in enumerate(model.layers) if "kernel" in layer.grads]
        # where each kernel's squared gradient norm sits in the trainer's grad_sq
        self.kernel_slots = [model.variable_names.index(f"{layer.name}.kernel") for _, layer in self.layers]
        every = cfg.get("every")
        if every is None:
            every = 1 if model.count_params() <= AUTO_EVERY_PARAMS else AUTO_EVERY
        self.every = every
        self.records: list[dict] = []
        self.sums = np.zeros(len(self.layers))
        self.count = 0
        self.previous: dict[int, float] = {}
        self.epoch_summaries: list[LayerSummary] = []
        # small batches: each unit's largest output since the dead fractions were last measured
        self._peak = {i: None for i, layer in self.layers if layer.activation.name in RELU_FAMILY}
        self._alive_samples = 0

    def on_epoch_begin(self, trainer, epoch):
        self.sums[:] = 0.0
        self.count = 0
        self._epoch_start = len(self.records)

    def on_gradients(self, trainer, x, y, loss):
        norms = np.sqrt(trainer.grad_sq[self.kernel_slots])
        self.sums += norms
        self.count += 1
        if len(x) < DEAD_WINDOW and self._peak:
            self._track_peaks(len(x))
        if trainer.step % self.every == 0:
            self.record(trainer.epoch, trainer.step, norms)

    def _track_peaks(self, n: int) -> None:
        for i, layer in self.layers:
            if i in self._peak:
                top = layer.A[0] if n == 1 else np.maximum.reduce(layer.A, axis=0)
                peak = self._peak[i]
                self._peak[i] = top.copy() if peak is None else np.maximum(peak, top, out=peak)
        self._alive_samples += n

    def _window_dead_fraction(self, i: int, batch: int, dead: float) -> float:
        if batch >= DEAD_WINDOW or i not in self._peak:
            return dead
        if self._alive_samples < DEAD_WINDOW:
            return math.nan  # not enough samples yet to call a unit dead
        return float((self._peak[i] <= 0).mean())

    def record(self, epoch: int, step: int, norms) -> None:
        for (i, layer), norm in zip(self.layers, norms):
            w = layer.params["kernel"]
            g = np.abs(layer.grads["kernel"])
            wn = math.sqrt(float(np.vdot(w, w)))
            act = layer.activation.name
            mean, std, dead, sat = activation_stats(layer.A, act)
            dead = self._window_dead_fraction(i, len(layer.A), dead)
            self.records.append(
                {
                    "epoch": epoch + 1,
                    "step": step + 1,
                    "layer_index": i,
                    "layer": layer.name,
                    "grad_norm": float(norm),
                    "grad_mean_abs": float(g.mean(dtype=np.float64)),
                    "grad_max": float(g.max()),
                    "weight_norm": wn,
                    "update_ratio": norm / wn if wn > 0 else math.nan,
                    "act_mean": mean,
                    "act_std": std,
                    "dead_fraction": dead,
                    "saturated_fraction": sat,
                }
            )
        if self._alive_samples >= DEAD_WINDOW:  # measured: start the next window
            self._peak = dict.fromkeys(self._peak)
            self._alive_samples = 0

    def summarize(self, records: list[dict], mean_norms=None) -> list[LayerSummary]:
        out = []
        for j, (i, layer) in enumerate(self.layers):
            rows = [r for r in records if r["layer_index"] == i]
            s = LayerSummary(i, layer.name, layer.activation.name)
            s.grad_norm = float(mean_norms[j]) if mean_norms is not None else _mean([r["grad_norm"] for r in rows])
            if rows:
                s.weight_norm = rows[-1]["weight_norm"]
                s.dead_fraction = _mean([r["dead_fraction"] for r in rows])
                s.saturated_fraction = _mean([r["saturated_fraction"] for r in rows])
            out.append(s)
        return out

    def on_epoch_end(self, trainer, epoch, logs):
        means = self.sums / max(self.count, 1)
        summaries = self.summarize(self.records[self._epoch_start :], means)
        diagnose(summaries, self.cfg, self.previous)
        self.previous = {s.index: s.grad_norm for s in summaries}
        self.epoch_summaries = summaries
        for s in summaries:
            logs[f"grad_norm.{s.name}"] = s.grad_norm
        logs["flags"] = "; ".join(f"{s.name}: {f.name}" for s in summaries for f in s.flags)

    def get_state(self):
        return {
            "sums": self.sums.tolist(),
            "count": self.count,
            "previous": {str(k): v for k, v in self.previous.items()},
            "epoch_start": getattr(self, "_epoch_start", 0),
        }, {}

    def set_state(self, scalars, arrays):
        self.sums[:] = scalars["sums"]
        self.count = scalars["count"]
        self.previous = {int(k): v for k, v in scalars["previous"].items()}
        self._epoch_start = scalars["epoch_start"]


def _mean(values) -> float:
    finite = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(finite)) if finite else math.nan
