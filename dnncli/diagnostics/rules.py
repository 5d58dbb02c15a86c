"""Flags: what each layer's recorded statistics say, judged record by record over the whole window.

The gradient monitor hands every recorded step (and the batch loss at it) to a
``FlagTracker``. For each layer the tracker keeps only the short windows the
rules need (the last ``growth_window`` records), so the cost of a run stays
linear in its length, and it keeps, for each flag, when it was first raised,
for how many records it held, its worst value, and whether it still holds.
``dnn train`` (as it runs), ``dnn inspect-gradients CONFIG`` and
``dnn inspect-gradients RUN_DIR`` (replaying ``gradients.csv`` and
``losses.csv``) all judge with this one tracker, so the same records give the
same flags.

The rules, with their thresholds under ``monitor:`` in a config. "Median" is
the running median of the last ``smooth`` records, never a single batch:

- ``vanishing``: the median kernel gradient norm is below ``vanishing_floor``
  (a layer that was never above it), or below ``vanishing_ratio`` times the
  last dense layer's;
- ``exploding``: the median is above ``exploding_norm`` (or a single record
  above its square: spikes between zeros leave the median low); or it has grown
  ``exploding_growth`` times or more above the median of the records before it
  in the ``growth_window``, by more than the layer's own batch-to-batch spread
  can explain, up to ``exploding_min`` or more, while the loss is not falling
  (a network leaving a plateau, or sharpening its fit, grows its gradients
  too: that is learning, not an explosion);
- ``collapsed``: the gradient is exactly 0, or under ``vanishing_floor`` and
  ``vanishing_ratio`` times its own peak, for ``collapse_records`` consecutive
  records or more after having been above the floor: the layer stopped
  learning;
- ``dead`` (relu only: leaky_relu, elu, selu, gelu and swish pass gradient
  below zero): the median dead-unit fraction is above ``dead_fraction``;
- ``saturated`` (sigmoid and tanh hidden layers; an output layer's activation
  belongs to the loss): the median saturated fraction is above
  ``saturated_fraction``;
- ``stalled``: the update the optimizer takes moves the layer's kernel by less
  than ``stalled_ratio`` of its norm (median |delta W| / |W|; about 1e-3 is
  usual), with nothing else to explain it (no other flag in the network, none
  that ever went out of range) and while the network neither learns nor has
  learned: the steps are too small;
- ``nonfinite``: NaN or infinity in the layer's gradient or weights, or in the
  moving statistics of the batch normalization that follows it.

``dead`` and ``saturated`` are a pathology while the network has not learned:
once the loss is half of an uninformed model's (ln C for C classes; for
values, a fifth of where training started), or while it is clearly falling
with a tenth of the units still working, dead or saturated units are capacity
the network does not need, not a cause of failure. The growth rule must hold
for ``smooth`` records in a row, while the loss neither falls nor learns.

One verdict per layer and record on the gradient's size: ``collapsed`` before
``exploding`` past ``exploding_norm``, before ``vanishing``, before
``exploding`` by growth; a layer is never ``vanishing`` and ``exploding`` at
once. A flag whose cause shows on the same layer (vanishing with saturated or
dead units) says so in its detail. A flag raised within the first ``smooth``
records that clears within ``growth_window`` records is *transient*: the
initial weights settling, reported as such and not failing ``--fail-on``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from dnncli.diagnostics.flags import (
    DEAD_ACTIVATIONS,
    FLAGS,
    SATURATING,
    SIZE_VERDICTS,
    FlagState,
    WatchedLayer,
    after_other_size,
    first_onset,
    hold,
    layer_span,
)
from dnncli.diagnostics.progress import LossProgress
from dnncli.diagnostics.progress import median as _median

__all__ = ["DEAD_ACTIVATIONS", "FLAGS", "SATURATING", "FlagState", "FlagTracker", "WatchedLayer", "layer_span"]

MOSTLY = 0.9  # a layer with this share of dead or saturated units is held back, whatever its loss does
Z_GROWTH = 4.0  # growth beyond this many standard errors of the layer's own spread is not noise


@dataclass
class _LayerWindow:
    grad: deque  # (step, epoch, grad_norm) of the last `smooth` records
    dead: deque
    sat: deque
    upd: deque  # (step, epoch, update ratio) of the last `smooth` records
    logs: deque  # log10 of the finite gradient norms of the last `growth_window` records
    seen_above: bool = False  # the gradient was above the floor at some record
    peak: float = 0.0  # the highest running median so far
    zero_run: int = 0
    zero_start: tuple = (0, 0)
    grow_run: int = 0  # consecutive records the growth rule has held
    flags: dict = field(default_factory=dict)  # name -> FlagState
    epoch_flags: set = field(default_factory=set)  # flags that held at some record of the current epoch


def _spread(values) -> float:
    """The batch-to-batch noise of a series, robust to its trend: from the median step between neighbours (for
    independent noise of deviation s, the median of |a - b| is 0.954 s)."""
    return _median([abs(b - a) for a, b in zip(values, values[1:])]) / 0.954


class FlagTracker:
    """Judge each recorded step of every watched layer; keep each flag's onset, extent and worst value.

    Parameters
    ----------
    layers : list of WatchedLayer
        The watched dense layers, in model order; the last is the reference for ``vanishing_ratio``.
    cfg : dict
        The resolved ``monitor:`` section (thresholds and windows).
    """

    def __init__(self, layers: list[WatchedLayer], cfg: dict, uninformed_loss: float | None = None):
        self.layers = list(layers)
        self.cfg = cfg
        self.smooth = cfg["smooth"]
        self.windows = {
            w.index: _LayerWindow(
                deque(maxlen=self.smooth),
                deque(maxlen=self.smooth),
                deque(maxlen=self.smooth),
                deque(maxlen=self.smooth),
                deque(maxlen=cfg["growth_window"]),
            )
            for w in self.layers
        }
        self.total = 0  # records judged, per layer
        self.events: list[dict] = []  # non-finite stops and skipped batches
        self.progress = LossProgress(self.smooth, cfg["growth_window"], uninformed_loss)

    # feeding ---------------------------------------------------------------------
    def begin_epoch(self) -> None:
        for win in self.windows.values():
            win.epoch_flags = set()

    def update(self, rows: list[dict], loss: float | None = None) -> None:
        """Judge one recorded step: ``rows`` holds one record per watched layer (as in gradients.csv); ``loss`` is
        the batch loss at that step (None where unknown: the loss-dependent rules then judge without it)."""
        self.total += 1
        self.progress.add(loss)
        self._calm = self._network_calm()
        by_index = {r["layer_index"]: r for r in rows}
        medians = {}
        for w in self.layers:
            r = by_index.get(w.index)
            if r is None:
                continue
            win = self.windows[w.index]
            g = r["grad_norm"]
            if math.isfinite(g):
                win.grad.append((r["step"], r["epoch"], g))
            for values, key in (
                (win.dead, "dead_fraction"),
                (win.sat, "saturated_fraction"),
                (win.upd, "update_ratio"),
            ):
                v = r.get(key, math.nan)
                if v is not None and math.isfinite(v):
                    values.append((r["step"], r["epoch"], v))
            medians[w.index] = _median([v for _, _, v in win.grad])
        reference = medians.get(self.layers[-1].index, math.nan) if self.layers else math.nan
        for w in self.layers:
            r = by_index.get(w.index)
            if r is not None:
                self._judge(w, r, medians[w.index], reference)

    def _network_calm(self) -> bool:
        """No layer held another flag at the last record, and none ever went out of range: small steps are then
        the optimizer's, not a symptom of something else (tiny signals, blown-up weights, dead units)."""
        for win in self.windows.values():
            for name, state in win.flags.items():
                if name in ("exploding", "nonfinite", "collapsed") or (state.active and name != "stalled"):
                    return False
        return True

    def idle_units_matter(self, fraction: float) -> bool:
        """Whether dead or saturated units, this share of a layer's, hold the network back: not once it has
        learned, nor while it is learning with a working share of units left."""
        if self.progress.learned:
            return False
        return fraction >= MOSTLY or not self.progress.learning()

    def _judge(self, w: WatchedLayer, r: dict, median: float, reference: float) -> None:
        cfg = self.cfg
        win = self.windows[w.index]
        step, epoch, g = r["step"], r["epoch"], r["grad_norm"]
        floor = cfg["vanishing_floor"]
        held: dict[str, tuple] = {}  # name -> (onset step, onset epoch, measure, worse-than, detail)

        weight_norm = r.get("weight_norm", 0.0)
        if not math.isfinite(g) or (weight_norm is not None and not math.isfinite(weight_norm)):
            what = "gradient" if not math.isfinite(g) else "weights"
            held["nonfinite"] = (step, epoch, 1.0, None, f"non-finite {what} at step {step}")

        units = self._units(w, win, held)

        # collapse: exactly 0, or at the floor and a thousandth of its own peak or less, for several records in a
        # row, after having been above the floor; a gradient that merely hovers near the floor is vanishing
        dropped = g == 0 or g <= cfg["vanishing_ratio"] * win.peak
        if math.isfinite(g) and g <= floor and win.seen_above and dropped:
            if win.zero_run == 0:
                win.zero_start = (step, epoch)
            win.zero_run += 1
        else:
            win.zero_run = 0
        if math.isfinite(g) and g > floor:
            win.seen_above = True
        if math.isfinite(median):
            win.peak = max(win.peak, median)
        because = f" ({units})" if units else ""
        if win.zero_run >= cfg["collapse_records"]:
            s, e = win.zero_start
            zero = "0" if g == 0 else f"under the floor {floor:.0e}"
            held["collapsed"] = (s, e, -win.zero_run, False, f"gradient {zero}{because}")
        # a median of exactly 0 after a live start is a collapse under way, not a vanishing gradient
        elif math.isfinite(median) and not (median == 0 and win.seen_above):
            verdict = self._magnitude(w, win, median, reference, because)
            if verdict is not None:
                held[verdict[0]] = verdict[1:]
        if math.isfinite(g) and g > 0:
            win.logs.append(math.log10(g))
        if not held and len(win.upd) == self.smooth and self._calm:  # a full window: never one step's say
            pace = _median([v for _, _, v in win.upd])
            limit = cfg["stalled_ratio"]
            if pace < limit and not self.progress.learned and not self.progress.learning():
                onset = first_onset(win.upd, lambda v: v < limit)
                detail = f"updates {pace:.2g} of the weights per step < {limit:.0e} (about 1e-3 is usual)"
                held["stalled"] = (*onset, pace, False, detail)

        for name, state in win.flags.items():
            if name not in held:
                state.active = False
                self._settle(state)
        for name, (s, e, measure, higher_is_worse, detail) in held.items():
            # a collapse is confirmed after collapse_records records at 0: they all count, from its onset
            backdated = win.zero_run - 1 if name == "collapsed" else 0
            if name in SIZE_VERDICTS and (s, e) != (moved := after_other_size(win, name, s, e)):
                # a layer is never two of them at one record: the onset goes after the other's last record
                (s, e), backdated = moved, min(backdated, sum(1 for st, _, _ in win.grad if st >= moved[0]) - 1)
            hold(win, name, step, epoch, s, e, measure, higher_is_worse, detail, backdated, self.total)

    def _magnitude(self, w: WatchedLayer, win, median: float, reference: float, because: str):
        """The one verdict on the gradient's size at this record: (name, onset..., detail), or None."""
        cfg = self.cfg
        floor, top = cfg["vanishing_floor"], cfg["exploding_norm"]
        smoothed = "one record" if len(win.grad) == 1 else f"median of the last {len(win.grad)} records"
        if median > top:
            onset = first_onset(win.grad, lambda v: v > top)
            return ("exploding", *onset, median, True, f"gradient norm {median:.3g} > {top:.0e} ({smoothed})")
        spike = max(v for _, _, v in win.grad)
        if spike > top**2:  # a record this far past the norm is an explosion whatever the records around it say
            onset = first_onset(win.grad, lambda v: v > top**2)
            return ("exploding", *onset, spike, True, f"gradient norm {spike:.3g} > {top**2:.0e} at one record")
        if median < floor and not win.seen_above:
            onset = first_onset(win.grad, lambda v: v < floor)
            return ("vanishing", *onset, median, False, f"gradient norm {median:.3g} < floor {floor:.0e}{because}")
        if not w.output and math.isfinite(reference) and reference > floor:
            ratio = median / reference
            if ratio < cfg["vanishing_ratio"]:
                limit = cfg["vanishing_ratio"] * reference
                onset = first_onset(win.grad, lambda v: v < limit)
                detail = f"gradient norm {median:.3g}, {ratio:.2g} x the last layer's ({reference:.3g}){because}"
                return ("vanishing", *onset, median, False, detail)
        grown = self._growth(win)
        win.grow_run = win.grow_run + 1 if grown is not None else 0
        if grown is not None and win.grow_run >= self.smooth:
            base, now = grown
            limit = cfg["exploding_growth"] * base
            onset = first_onset(win.grad, lambda v: v >= limit)
            n = len(win.logs)
            detail = (
                f"gradient norm grew {now / base:.3g}x while the loss did not fall: median {base:.3g} over records"
                f" {self.total - n + 1}-{self.total - self.smooth} -> {now:.3g} over the last {self.smooth}"
            )
            return ("exploding", *onset, now / base, True, detail)
        return None

    def _growth(self, win) -> tuple[float, float] | None:
        """(median before, median now) where the gradient grew past growth and noise while the loss did not fall."""
        cfg = self.cfg
        logs = list(win.logs)
        if len(logs) + 1 < cfg["growth_window"]:
            return None
        old, recent = logs[: -self.smooth + 1], logs[-self.smooth + 1 :]  # the record being judged comes next
        recent = recent + [math.log10(win.grad[-1][2])] if win.grad and win.grad[-1][2] > 0 else recent
        base, now = _median(old), _median(recent)
        rise = now - base
        noise = _spread(logs) * math.sqrt(1.57 / len(recent) + 1.57 / len(old))
        if rise < math.log10(cfg["exploding_growth"]) or rise < Z_GROWTH * noise or 10**now < cfg["exploding_min"]:
            return None
        if self.progress.falling() or self.progress.learning():
            return None
        return 10**base, 10**now

    def _units(self, w: WatchedLayer, win, held: dict) -> str:
        """Judge dead and saturated units into ``held``; return the cause they give the layer's gradient."""
        cfg = self.cfg
        if w.activation in DEAD_ACTIVATIONS and win.dead:
            dead = _median([v for _, _, v in win.dead])
            limit = cfg["dead_fraction"]
            if dead > limit and self.idle_units_matter(dead):
                onset = first_onset(win.dead, lambda v: v > limit)
                held["dead"] = (*onset, dead, True, f"{dead:.0%} of the units output 0 for every sample")
                return "its units are dead"
        if w.activation in SATURATING and not w.output and win.sat:
            sat = _median([v for _, _, v in win.sat])
            limit = cfg["saturated_fraction"]
            if sat > limit and self.idle_units_matter(sat):
                onset = first_onset(win.sat, lambda v: v > limit)
                held["saturated"] = (*onset, sat, True, f"{sat:.0%} of the outputs within 1% of a bound")
                return "its units are saturated"
        return ""

    def _settle(self, state: FlagState) -> None:
        """A flag that stopped holding: transient if it came at initialization and went within the window."""
        state.transient = (
            state.episodes == 1
            and state.onset_record <= self.smooth
            and state.last_record - state.onset_record < self.cfg["growth_window"]
            and state.name != "nonfinite"
        )

    def nonfinite(self, layer_index: int | None, stage: str, step: int, epoch: int, skipped: bool) -> None:
        """A batch whose loss, gradients or statistics were not finite: stopped at, or skipped."""
        target = self._owner(layer_index)
        what = "skipped" if skipped else "training stopped"
        where = f" of layer {layer_index}" if layer_index is not None else ""
        detail = f"non-finite {stage}{where} ({what})"
        self.events.append(
            {"stage": stage, "layer": layer_index, "step": step, "epoch": epoch, "skipped": skipped, "detail": detail}
        )
        if target is not None:
            win = self.windows[target.index]
            hold(win, "nonfinite", step, epoch, step, epoch, 1.0, None, detail)
            if skipped:
                win.flags["nonfinite"].active = False

    def _owner(self, layer_index: int | None) -> WatchedLayer | None:
        """The watched layer a model layer belongs to: itself, or the nearest watched layer before it."""
        if not self.layers:
            return None
        if layer_index is None:
            return self.layers[-1]
        before = [w for w in self.layers if w.index <= layer_index]
        return before[-1] if before else self.layers[0]

    # reading ---------------------------------------------------------------------
    def flags(self, index: int) -> list[FlagState]:
        """Every flag the layer raised in the window, in the order of FLAGS."""
        found = self.windows[index].flags
        return [found[name] for name in FLAGS if name in found]

    def set_epoch_flags(self, flags: dict[int, list[str]]) -> None:
        """The flags held so far in the current epoch, by layer index (a resumed run's, from its checkpoint)."""
        for index, names in flags.items():
            self.windows[index].epoch_flags = set(names)

    def epoch_flags(self, index: int) -> list[str]:
        return [name for name in FLAGS if name in self.windows[index].epoch_flags]

    def raised(self) -> list[tuple[WatchedLayer, FlagState]]:
        return [(w, f) for w in self.layers for f in self.flags(w.index)]
