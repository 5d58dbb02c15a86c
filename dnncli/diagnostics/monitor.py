"""The gradient monitor: per-layer statistics while training, judged by the flag rules.

One monitor serves ``dnn train`` (its live view and ``gradients.csv``) and ``dnn inspect-gradients``. Every step
it takes the L2 norm of each dense kernel's gradient (read from the trainer's squared norms: no extra pass); every
``every`` steps it records the gradient's mean absolute value and maximum, the weight norm, the ratio
||dW|| / ||W||, the layer's activations (mean, standard deviation, fraction of dead units and of saturated
outputs, a histogram: ``histograms.py``) and the gradient noise scale's two estimates (``noise.py``). A dense
layer without an activation that is followed by an ``activation`` layer (batch normalization may sit between) is
watched as one unit with it.

A unit is dead when it outputs zero for every sample of the batch or, for
batches under 32 samples, for every sample seen since the previous record and
at least 32 of them: one sample cannot tell a dead unit from one that is merely
off for that input. An output is saturated within 1% of a sigmoid's or tanh's
bound.

Records leave the monitor as they are made (``take_records``): the run
appends them to ``gradients.csv`` each epoch, and the monitor itself keeps
only this epoch's sums and the windows of the flag rules (``rules.py``).
``summarize`` gives each layer's numbers at an epoch's end, ``interim`` the
same numbers so far in the epoch (for a live view that must not sit still
through a long first epoch).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dnncli.diagnostics import noise
from dnncli.diagnostics.instruments import EMPTY, Instruments
from dnncli.diagnostics.rules import DEAD_ACTIVATIONS, FLAGS, SATURATING, FlagState, FlagTracker, WatchedLayer
from dnncli.diagnostics.settings import STEP_FIELDS, MonitorSettings, resolve_monitor
from dnncli.train.trainer import Callback

__all__ = ["STEP_FIELDS", "GradientMonitor", "LayerSummary", "MonitorSettings", "resolve_monitor", "watched_layers"]

AUTO_EVERY_PARAMS = 50_000  # models up to this size record every statistic at every step
AUTO_EVERY = 20
DEAD_WINDOW = 256  # samples a dead-unit fraction is measured over, at the least
TREND_EPOCHS = 8  # epochs of gradient norms the live view's trend shows


@dataclass
class LayerSummary:
    """A watched layer over one epoch: the numbers of the live view and the flags that held."""

    index: int
    name: str
    activation: str
    grad_norm: float = math.nan  # mean over every step of the epoch
    update_ratio: float = math.nan  # means over the epoch's records
    dead_fraction: float = math.nan
    saturated_fraction: float = math.nan
    weight_norm: float = math.nan  # at the epoch's last record
    trend: list[float] = field(default_factory=list)  # grad_norm of the last epochs, oldest first
    flags: list[str] = field(default_factory=list)  # held at some record of this epoch
    states: list[FlagState] = field(default_factory=list)  # every flag raised so far
    raised: list[str] = field(default_factory=list)  # began in this epoch
    cleared: list[str] = field(default_factory=list)  # held at the previous epoch's end, not at this one's
    raised_at: dict[str, tuple[int, int]] = field(default_factory=dict)  # (step, epoch) of each of ``raised``
    cleared_at: dict[str, tuple[int, int]] = field(default_factory=dict)  # and of each of ``cleared``

    @property
    def share(self) -> tuple[str, float]:
        """("dead" or "saturated", fraction) for the layer's activation, or ("", nan)."""
        if self.activation in DEAD_ACTIVATIONS:
            return "dead", self.dead_fraction
        if self.activation in SATURATING:
            return "saturated", self.saturated_fraction
        return "", math.nan


def activation_stats(A: np.ndarray, activation: str) -> tuple[float, float, float, float]:
    """(mean, std, dead fraction, saturated fraction) of a layer's outputs over a batch."""
    mean = float(A.mean(dtype=np.float64))
    std = float(A.std(dtype=np.float64))
    dead = saturated = math.nan
    if activation in DEAD_ACTIVATIONS:
        dead = float((A.max(axis=0) <= 0).mean())
    if activation == "sigmoid":
        saturated = float(((A < 0.01) | (A > 0.99)).mean())
    elif activation == "tanh":
        saturated = float((np.abs(A) > 0.99).mean())
    return mean, std, dead, saturated


def watched_layers(model) -> list[tuple[WatchedLayer, object, object]]:
    """(what the rules know, the dense layer, the layer whose outputs are its activations) per dense layer."""
    layers = model.layers
    dense = [i for i, layer in enumerate(layers) if "kernel" in layer.grads]
    out = []
    for i in dense:
        layer = act_layer = layers[i]
        activation = layer.activation.name
        if activation == "linear":
            j = i + 1
            while j < len(layers) and layers[j].type_name == "batch_normalization":
                j += 1
            if j < len(layers) and layers[j].type_name == "activation":
                act_layer = layers[j]
                activation = act_layer.activation.name
        out.append((WatchedLayer(i, layer.name, activation, i == dense[-1]), layer, act_layer))
    return out


class GradientMonitor(Callback):
    """Per-layer gradient and activation statistics of every dense layer, for ``dnn train`` and inspection."""

    def __init__(self, model, cfg: dict, loss=None):
        """``loss``: the model's loss, whose uninformed value tells the rules when the network has learned."""
        self.cfg = cfg
        self.model = model
        self.watched = watched_layers(model)
        self.layers = [w for w, _, _ in self.watched]
        uninformed = loss.uninformed(model.output_shape[-1]) if loss is not None else None
        self.tracker = FlagTracker(self.layers, cfg, uninformed)
        # where each kernel's squared gradient norm sits in the trainer's grad_sq
        self.kernel_slots = [model.variable_names.index(f"{layer.name}.kernel") for _, layer, _ in self.watched]
        every = cfg.get("every")
        if every is None:
            every = 1 if model.count_params() <= AUTO_EVERY_PARAMS else AUTO_EVERY
        self.every = every
        n = len(self.watched)
        self.pending: list[dict] = []  # records not yet taken
        self._open = None  # (rows, loss, kernels before the step) of the record whose update is not yet known
        self.sums = np.zeros(n)  # this epoch's per-step gradient norms, summed
        self.count = 0
        self.record_sums = np.zeros((n, 3))  # update ratio, dead and saturated fractions over this epoch's records
        self.record_counts = np.zeros((n, 3))
        self.last_weight_norm = np.full(n, math.nan)
        self.trend = [deque(maxlen=TREND_EPOCHS) for _ in range(n)]
        self.active_before: list[list[str]] = [[] for _ in range(n)]  # flags active at the previous epoch's end
        self.epoch_summaries: list[LayerSummary] = []
        # where each flag last came on or went off, (step, epoch): a flag's onset is only its first episode's
        self._active: list[set[str]] = [set() for _ in range(n)]
        self._raised_at: list[dict] = [{} for _ in range(n)]
        self._cleared_at: list[dict] = [{} for _ in range(n)]
        # small batches: each unit's largest output since the dead fractions were last measured
        self._peak = {w.index: None for w in self.layers if w.activation in DEAD_ACTIVATIONS}
        self._alive_samples = 0
        self.instruments = Instruments(model, every)  # the noise scale's estimates and the activation histograms
        self.last_noise: tuple[int, float, float] | None = None  # (step, tr(Sigma), |G|^2) of the newest record

    # the trainer's hooks --------------------------------------------------------------
    def on_epoch_begin(self, trainer, epoch):
        self.sums[:] = 0.0
        self.count = 0
        self.record_sums[:] = 0.0
        self.record_counts[:] = 0.0
        self.tracker.begin_epoch()

    def on_gradients(self, trainer, x, y, loss):
        self.close_record()
        norms = np.sqrt(trainer.grad_sq[self.kernel_slots])
        self.sums += norms
        self.count += 1
        if len(x) < DEAD_WINDOW and self._peak:
            self._track_peaks(len(x))
        if trainer.step % self.every == 0:
            self.record(trainer.epoch, trainer.step, norms, loss.total)

    def on_batch_end(self, trainer, step, logs):
        self.close_record()

    def on_batch_skipped(self, trainer, err):
        self.tracker.nonfinite(err.layer, err.stage, err.step + 1, err.epoch + 1, skipped=True)

    def stopped(self, err) -> None:
        """Training stopped on a non-finite batch: flag the layer it was found in."""
        self.close_record()
        self.tracker.nonfinite(err.layer, err.stage, err.step + 1, err.epoch + 1, skipped=False)

    def on_epoch_end(self, trainer, epoch, logs):
        self.close_record()
        self.epoch_summaries = self.summarize()
        for s in self.epoch_summaries:
            logs[f"grad_norm.{s.name}"] = s.grad_norm
        logs["flags"] = "; ".join(f"{s.name}: {f}" for s in self.epoch_summaries for f in s.flags)

    # statistics -----------------------------------------------------------------------
    def _track_peaks(self, n: int) -> None:
        for w, _, act_layer in self.watched:
            if w.index in self._peak:
                A = act_layer.A
                top = A[0] if n == 1 else np.maximum.reduce(A, axis=0)
                peak = self._peak[w.index]
                self._peak[w.index] = top.copy() if peak is None else np.maximum(peak, top, out=peak)
        self._alive_samples += n

    def _window_dead_fraction(self, i: int, batch: int, dead: float) -> float:
        if batch >= DEAD_WINDOW or i not in self._peak:
            return dead
        if self._alive_samples < DEAD_WINDOW:
            return math.nan  # not enough samples yet to call a unit dead
        return float((self._peak[i] <= 0).mean())

    def record(self, epoch: int, step: int, norms, loss: float | None = None) -> None:
        """Open a record of this step: everything but the update, which is known once the optimizer has taken it
        (``close_record``, at the end of the batch or at the next step, whichever comes first)."""
        rows, measure = [], self.instruments.due(step)
        for j, ((w, layer, act_layer), norm) in enumerate(zip(self.watched, norms)):
            kernel = layer.params["kernel"]
            g = np.abs(layer.grads["kernel"])
            wn = math.sqrt(float(np.vdot(kernel, kernel)))
            if math.isinf(wn) and np.isfinite(kernel).all():
                # a float32 dot product overflows above about 1.8e19: only then pay for a float64 copy
                wn = math.sqrt(float(np.vdot(kernel.astype(np.float64), kernel)))
            mean, std, dead, sat = activation_stats(act_layer.A, w.activation)
            dead = self._window_dead_fraction(w.index, len(act_layer.A), dead)
            rows.append(
                {
                    "epoch": epoch + 1,
                    "step": step + 1,
                    "layer_index": w.index,
                    "layer": w.name,
                    "grad_norm": float(norm),
                    "grad_mean_abs": float(g.mean(dtype=np.float64)),
                    "grad_max": float(g.max()),
                    "weight_norm": wn,
                    "update_ratio": math.nan,  # the step's |delta W| / |W|, when the record is closed
                    "act_mean": mean,
                    "act_std": std,
                    "dead_fraction": dead,
                    "saturated_fraction": sat,
                    **(self.instruments.row(w, layer, act_layer) if measure else EMPTY),
                }
            )
            self.last_weight_norm[j] = wn
        if measure:
            self.last_noise = (step + 1, *noise.total(rows))
        if self._alive_samples >= DEAD_WINDOW:  # measured: start the next window
            self._peak = dict.fromkeys(self._peak)
            self._alive_samples = 0
        before = [layer.params["kernel"].copy() for _, layer, _ in self.watched]
        self._open = (rows, loss, before)

    def close_record(self) -> None:
        """Finish the open record with the update the optimizer took (after clipping and weight decay: the step
        itself, not the gradient), and judge it."""
        if self._open is None:
            return
        rows, loss, before = self._open
        self._open = None
        if not rows:
            return
        for j, ((_, layer, _), row, old) in enumerate(zip(self.watched, rows, before)):
            delta = layer.params["kernel"] - old
            moved = math.sqrt(float(np.vdot(delta, delta)))
            row["update_ratio"] = moved / row["weight_norm"] if row["weight_norm"] > 0 else math.nan
            for k, v in enumerate((row["update_ratio"], row["dead_fraction"], row["saturated_fraction"])):
                if math.isfinite(v):
                    self.record_sums[j, k] += v
                    self.record_counts[j, k] += 1
        self.pending.extend(rows)
        step, epoch = rows[0]["step"], rows[0]["epoch"]
        self.tracker.update(rows, loss)
        self._note_changes(step, epoch)

    def _note_changes(self, step: int, epoch: int) -> None:
        for j, w in enumerate(self.layers):
            now = {f.name for f in self.tracker.flags(w.index) if f.active}
            was = self._active[j]
            if now != was:
                for name in now - was:
                    self._raised_at[j][name] = (step, epoch)
                for name in was - now:
                    self._cleared_at[j][name] = (step, epoch)
                self._active[j] = now

    def take_records(self) -> list[dict]:
        """The records made since the last call, handed over (the monitor keeps none)."""
        self.close_record()
        out, self.pending = self.pending, []
        return out

    def replay(self, records: list[dict], events: list[dict] = (), losses: dict | None = None) -> None:
        """Judge recorded steps and non-finite events again, as one timeline in (epoch, step) order; ``losses``:
        the batch loss by step (losses.csv), for the rules that read it."""
        timeline: dict[tuple[int, int], list] = {}
        for r in records:
            timeline.setdefault((r["epoch"], r["step"]), [[], []])[0].append(r)
        for e in events:
            timeline.setdefault((e["epoch"], e["step"]), [[], []])[1].append(e)
        epoch = None
        losses = losses or {}
        for (at_epoch, at_step), (rows, happened) in sorted(timeline.items()):
            if at_epoch != epoch:
                epoch = at_epoch
                self.tracker.begin_epoch()
            for e in happened:  # a skipped batch makes no record; a stopped one comes before its own
                self.tracker.nonfinite(e["layer"], e["stage"], e["step"], e["epoch"], e["skipped"])
            if rows:
                self.tracker.update(rows, losses.get(at_step))

    def summarize(self) -> list[LayerSummary]:
        """This epoch's numbers and flags for each watched layer; moves the trend on by one epoch."""
        out = []
        for j, s in enumerate(self._summaries()):
            self.trend[j].append(s.grad_norm)
            s.trend = list(self.trend[j])
            active = [f.name for f in s.states if f.active]
            before = self.active_before[j]
            s.raised = [f for f in s.flags if f not in before]
            s.cleared = [f for f in FLAGS if (f in before or f in s.flags) and f not in active]
            for f in s.states:
                if f.name in s.raised:
                    first = (f.onset_step, f.onset_epoch)  # the rule's onset, as the run's summary says it
                    s.raised_at[f.name] = first if f.episodes <= 1 else self._raised_at[j].get(f.name, first)
                if f.name in s.cleared:
                    s.cleared_at[f.name] = self._cleared_at[j].get(f.name, (f.last_step, f.last_epoch))
            self.active_before[j] = active
            out.append(s)
        return out

    def interim(self) -> list[LayerSummary]:
        """Each layer's numbers so far in this epoch and the flags it holds so far; the trend stays where the last
        epoch's end left it. A number this epoch has not measured yet is the last epoch's: no blank at its start."""
        out = self._summaries()
        last = {s.index: s for s in self.epoch_summaries}
        for s in out:
            # flags still active at the last record hold until a record says otherwise, even the previous epoch's
            active = {f.name for f in s.states if f.active}
            s.flags = [f for f in FLAGS if f in s.flags or f in active]
            before = last.get(s.index)
            if before is None:
                continue
            for key in ("grad_norm", "update_ratio", "dead_fraction", "saturated_fraction", "weight_norm"):
                if math.isnan(getattr(s, key)):
                    setattr(s, key, getattr(before, key))
        return out

    def _summaries(self) -> list[LayerSummary]:
        means = self.sums / self.count if self.count else None
        with np.errstate(invalid="ignore", divide="ignore"):
            record_means = self.record_sums / self.record_counts
        return [
            LayerSummary(
                w.index,
                w.name,
                w.activation,
                grad_norm=math.nan if means is None else float(means[j]),
                update_ratio=float(record_means[j, 0]),
                dead_fraction=float(record_means[j, 1]),
                saturated_fraction=float(record_means[j, 2]),
                weight_norm=float(self.last_weight_norm[j]),
                trend=list(self.trend[j]),
                flags=self.tracker.epoch_flags(w.index),
                states=self.tracker.flags(w.index),
            )
            for j, w in enumerate(self.layers)
        ]

    # checkpoints ----------------------------------------------------------------------
    def get_state(self):
        return {
            "sums": self.sums.tolist(),
            "count": self.count,
            "record_sums": self.record_sums.tolist(),
            "record_counts": self.record_counts.tolist(),
            "last_weight_norm": [None if math.isnan(v) else v for v in self.last_weight_norm.tolist()],
            "trend": [list(t) for t in self.trend],
            "active_before": self.active_before,
            "events": [e for e in self.tracker.events if e["skipped"]],
            "epoch_flags": [self.tracker.epoch_flags(w.index) for w in self.layers],
            "alive_samples": self._alive_samples,
        }, {f"peak.{i}": peak for i, peak in self._peak.items() if peak is not None}

    def set_state(self, scalars, arrays):
        self.sums[:] = scalars["sums"]
        self.count = scalars["count"]
        self.record_sums[:] = scalars["record_sums"]
        self.record_counts[:] = scalars["record_counts"]
        self.last_weight_norm[:] = [math.nan if v is None else v for v in scalars["last_weight_norm"]]
        for t, values in zip(self.trend, scalars["trend"]):
            t.clear()
            t.extend(values)
        self.active_before = [list(a) for a in scalars["active_before"]]
        self._restored = scalars
        # the small-batch dead-unit window: each unit's peak output since the last record
        self._alive_samples = scalars["alive_samples"]
        for i in self._peak:
            self._peak[i] = arrays.get(f"peak.{i}")

    def resume(self, records: list[dict], losses: dict | None = None) -> None:
        """After ``set_state``: judge the run's records so far again, with its skipped batches.

        The flags held in the unfinished epoch come from the checkpoint: the epoch may have no record yet.
        """
        self.replay(records, self._restored["events"], losses)
        self.tracker.set_epoch_flags({w.index: flags for w, flags in zip(self.layers, self._restored["epoch_flags"])})
        self._active = [{f.name for f in self.tracker.flags(w.index) if f.active} for w in self.layers]
