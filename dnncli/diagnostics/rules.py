"""Flags: what each layer's recorded statistics say, judged record by record over the whole window.

The gradient monitor hands every recorded step to a ``FlagTracker``. For each
layer the tracker keeps only the short windows the rules need (the last
``smooth`` records, and ``growth_window`` running medians), so the cost of a
run stays linear in its length, and it keeps, for each flag, when it was first
raised, for how many records it held, its worst value, and whether it still
holds. ``dnn train`` (as it runs), ``dnn inspect-gradients CONFIG`` and
``dnn inspect-gradients RUN_DIR`` (replaying ``gradients.csv``) all judge with
this one tracker, so the same records give the same flags.

The rules, with their thresholds under ``monitor:`` in a config:

- ``vanishing``: the running median of the kernel gradient norm is below
  ``vanishing_floor`` (a layer that was never above it), or below
  ``vanishing_ratio`` times the last dense layer's;
- ``exploding``: the running median is above ``exploding_norm``, or has grown
  ``exploding_growth`` times or more above its lowest value of the previous
  ``growth_window`` records, up to ``exploding_min`` or more (a network
  leaving a plateau grows its small gradients too);
- ``collapsed``: the gradient is exactly 0, or under ``vanishing_floor`` and
  ``vanishing_ratio`` times its own peak, for ``collapse_records`` consecutive
  records or more after having been above the floor: the layer stopped
  learning;
- ``dead`` (relu only: leaky_relu, elu, selu, gelu and swish pass gradient
  below zero): the running median of the dead-unit fraction is above
  ``dead_fraction``;
- ``saturated`` (sigmoid and tanh hidden layers; an output layer's activation
  belongs to the loss): the running median of the saturated fraction is above
  ``saturated_fraction``;
- ``nonfinite``: NaN or infinity in the layer's gradient or weights, or in the
  moving statistics of the batch normalization that follows it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from dnncli.errors import plural

FLAGS = ("vanishing", "exploding", "collapsed", "dead", "saturated", "nonfinite")
SATURATING = ("sigmoid", "tanh")
DEAD_ACTIVATIONS = ("relu",)  # the only activation whose gradient is exactly zero below zero


@dataclass(frozen=True)
class WatchedLayer:
    """What the rules know of a watched dense layer."""

    index: int  # position in the model's layers
    name: str
    activation: str  # the dense layer's own, or that of the activation layer that follows it
    output: bool = False  # the model's last dense layer


@dataclass
class FlagState:
    """One flag of one layer over a window: when it started, how long it held, how bad it got."""

    name: str
    onset_step: int
    onset_epoch: int
    last_step: int
    last_epoch: int
    records: int = 0  # records at which it held
    episodes: int = 0  # separate stretches
    active: bool = False  # holds at the last record
    peak: float = math.nan  # the worst value of the flag's measure
    detail: str = ""  # the numbers at the worst record

    def describe(self, unit: str = "step", total: int | None = None) -> str:
        """``gradient 0 from step 35 to the end (6 of 40 records)``: the worst numbers, then onset and extent."""

        def at(step: int, epoch: int) -> str:
            return f"step {step}" if unit == "step" else f"epoch {epoch} (step {step})"

        if self.name == "nonfinite":
            return f"{self.detail} at {at(self.onset_step, self.onset_epoch)}"
        held = f"({self.records} of {total} records)" if total else f"({plural(self.records, 'record')})"
        onset, last = at(self.onset_step, self.onset_epoch), at(self.last_step, self.last_epoch)
        stretches = f" in {self.episodes} stretches" if self.episodes > 1 else ""
        if self.active:
            span = f"from {onset} to the end{stretches} {held}"
        elif self.last_step == self.onset_step:
            span = f"at {onset} only {held}"
        else:
            span = f"from {onset} to {last}{stretches} {held}, then cleared"
        return f"{self.detail} {span}"


@dataclass
class _LayerWindow:
    grad: deque  # (step, epoch, grad_norm) of the last `smooth` records
    dead: deque
    sat: deque
    medians: deque  # running medians of the last `growth_window` records
    seen_above: bool = False  # the gradient was above the floor at some record
    peak: float = 0.0  # the highest running median so far
    zero_run: int = 0
    zero_start: tuple = (0, 0)
    flags: dict = field(default_factory=dict)  # name -> FlagState
    epoch_flags: set = field(default_factory=set)  # flags that held at some record of the current epoch


def _median(values) -> float:
    v = sorted(values)
    n = len(v)
    if n == 0:
        return math.nan
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


class FlagTracker:
    """Judge each recorded step of every watched layer; keep each flag's onset, extent and worst value.

    Parameters
    ----------
    layers : list of WatchedLayer
        The watched dense layers, in model order; the last is the reference for ``vanishing_ratio``.
    cfg : dict
        The resolved ``monitor:`` section (thresholds and windows).
    """

    def __init__(self, layers: list[WatchedLayer], cfg: dict):
        self.layers = list(layers)
        self.cfg = cfg
        self.smooth = cfg["smooth"]
        self.windows = {
            w.index: _LayerWindow(
                deque(maxlen=self.smooth),
                deque(maxlen=self.smooth),
                deque(maxlen=self.smooth),
                deque(maxlen=cfg["growth_window"]),
            )
            for w in self.layers
        }
        self.total = 0  # records judged, per layer
        self.events: list[dict] = []  # non-finite stops and skipped batches

    # feeding ---------------------------------------------------------------------
    def begin_epoch(self) -> None:
        for win in self.windows.values():
            win.epoch_flags = set()

    def update(self, rows: list[dict]) -> None:
        """Judge one recorded step: ``rows`` holds one record per watched layer (as in gradients.csv)."""
        self.total += 1
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
            for values, key in ((win.dead, "dead_fraction"), (win.sat, "saturated_fraction")):
                v = r.get(key, math.nan)
                if v is not None and math.isfinite(v):
                    values.append((r["step"], r["epoch"], v))
            medians[w.index] = _median([v for _, _, v in win.grad])
        reference = medians.get(self.layers[-1].index, math.nan) if self.layers else math.nan
        for w in self.layers:
            r = by_index.get(w.index)
            if r is not None:
                self._judge(w, r, medians[w.index], reference)

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
        collapsing = win.zero_run >= cfg["collapse_records"]
        if collapsing:
            s, e = win.zero_start
            zero = "0" if g == 0 else f"under the floor {floor:.0e}"
            held["collapsed"] = (s, e, -win.zero_run, False, f"gradient {zero}")

        # a median of exactly 0 after a live start is a collapse under way, not a vanishing gradient
        if math.isfinite(median) and not collapsing and not (median == 0 and win.seen_above):
            if median < floor and not win.seen_above:
                onset = self._onset(win.grad, lambda v: v < floor)
                held["vanishing"] = (*onset, median, False, f"gradient norm {median:.2g} < floor {floor:.0e}")
            elif not w.output and math.isfinite(reference) and reference > floor:
                ratio = median / reference
                if ratio < cfg["vanishing_ratio"]:
                    limit = cfg["vanishing_ratio"] * reference
                    onset = self._onset(win.grad, lambda v: v < limit)
                    held["vanishing"] = (
                        *onset,
                        median,
                        False,
                        f"gradient norm {median:.2g}, {ratio:.2g} x the last layer's ({reference:.2g})",
                    )
            if median > cfg["exploding_norm"]:
                limit = cfg["exploding_norm"]
                onset = self._onset(win.grad, lambda v: v > limit)
                held["exploding"] = (*onset, median, True, f"gradient norm {median:.2g} > {limit:.0e} at worst")
            elif len(win.medians) >= self.smooth:
                base = min(list(win.medians)[: len(win.medians) - self.smooth + 1])
                grown = median >= cfg["exploding_growth"] * base and median >= cfg["exploding_min"]
                if base > floor and grown:
                    limit = cfg["exploding_growth"] * base
                    onset = self._onset(win.grad, lambda v: v >= limit)
                    held["exploding"] = (
                        *onset,
                        median / base,
                        True,
                        f"gradient norm grew {median / base:.2g}x within {len(win.medians)} records"
                        f" ({base:.2g} -> {median:.2g})",
                    )
        if math.isfinite(median):
            win.medians.append(median)

        if w.activation in DEAD_ACTIVATIONS and win.dead:
            dead = _median([v for _, _, v in win.dead])
            limit = cfg["dead_fraction"]
            if dead > limit:
                onset = self._onset(win.dead, lambda v: v > limit)
                held["dead"] = (*onset, dead, True, f"{dead:.0%} of the units output 0 for every sample")
        if w.activation in SATURATING and not w.output and win.sat:
            sat = _median([v for _, _, v in win.sat])
            limit = cfg["saturated_fraction"]
            if sat > limit:
                onset = self._onset(win.sat, lambda v: v > limit)
                held["saturated"] = (*onset, sat, True, f"{sat:.0%} of the outputs within 1% of a bound")

        for name, state in win.flags.items():
            if name not in held:
                state.active = False
        for name, (s, e, measure, higher_is_worse, detail) in held.items():
            # a collapse is confirmed after collapse_records records at 0: they all count, from its onset
            backdated = win.zero_run - 1 if name == "collapsed" else 0
            self._hold(win, name, step, epoch, s, e, measure, higher_is_worse, detail, backdated)

    @staticmethod
    def _onset(values: deque, condition) -> tuple[int, int]:
        """The first record of the window on the flagged side of the threshold."""
        for step, epoch, v in values:
            if condition(v):
                return step, epoch
        step, epoch, _ = values[-1]
        return step, epoch

    @staticmethod
    def _hold(win, name, step, epoch, onset_step, onset_epoch, measure, higher_is_worse, detail, backdated=0) -> None:
        state = win.flags.get(name)
        if state is None:
            state = win.flags[name] = FlagState(name, onset_step, onset_epoch, step, epoch)
        if not state.active:
            state.active = True
            state.episodes += 1
            state.records += backdated
        state.records += 1
        state.last_step, state.last_epoch = step, epoch
        worse = (
            math.isnan(state.peak)
            or higher_is_worse is None
            or (measure > state.peak if higher_is_worse else measure < state.peak)
        )
        if worse:
            state.peak, state.detail = measure, detail
        win.epoch_flags.add(name)

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
            self._hold(win, "nonfinite", step, epoch, step, epoch, 1.0, None, detail)
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
