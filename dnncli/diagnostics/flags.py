"""The flags' vocabulary: their names, the layers they are raised on, and the state of one flag over a window."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dnncli.errors import plural

FLAGS = ("vanishing", "exploding", "collapsed", "dead", "saturated", "stalled", "nonfinite")
SATURATING = ("sigmoid", "tanh")
DEAD_ACTIVATIONS = ("relu",)  # the only activation whose gradient is exactly zero below zero


def layer_span(names: list[str], order: list[str]) -> str:
    """``dense to dense_2, dense_4 to dense_11 (11 layers)``: ``names`` as runs of consecutive layers of ``order``.

    A run of three layers or more is written by its ends; a gap in the run is never hidden. ``order`` is every
    watched layer's name in model order (a name missing from it is listed on its own, in the order given).
    """
    position = {name: k for k, name in enumerate(order)}
    known = sorted({n for n in names if n in position}, key=position.__getitem__)
    runs: list[list[str]] = []
    for name in known:
        if runs and position[name] == position[runs[-1][-1]] + 1:
            runs[-1].append(name)
        else:
            runs.append([name])
    parts = [f"{r[0]} to {r[-1]}" if len(r) >= 3 else ", ".join(r) for r in runs]
    parts += [n for n in dict.fromkeys(names) if n not in position]
    count = len(known) + len(parts) - len(runs)
    text = ", ".join(parts)
    return f"{text} ({count} layers)" if any(len(r) >= 3 for r in runs) else text


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
    onset_record: int = 0  # the tracker's record count at the onset and at the last record it held
    last_record: int = 0
    transient: bool = False  # raised at initialization and cleared within a few records (set by the tracker)

    def describe(self, unit: str = "step", total: int | None = None) -> str:
        """``gradient 0 from step 35 to the end (6 of 40 records)``: the worst numbers, then onset and extent."""

        def at(step: int, epoch: int) -> str:
            return f"step {step}" if unit == "step" else f"epoch {epoch} (step {step})"

        if self.name == "nonfinite":
            return f"{self.detail} at {at(self.onset_step, self.onset_epoch)}"
        held = f"({self.records} of {total} records)" if total else f"({plural(self.records, 'record')})"
        onset, last = at(self.onset_step, self.onset_epoch), at(self.last_step, self.last_epoch)
        stretches = f" in {self.episodes} stretches" if self.episodes > 1 else ""
        if self.transient:
            span = f"at initialization, {onset} to {last} {held}, then cleared (transient)"
        elif self.active:
            span = f"from {onset} to the end{stretches} {held}"
        elif self.last_step == self.onset_step:
            span = f"at {onset} only {held}"
        else:
            span = f"from {onset} to {last}{stretches} {held}, then cleared"
        return f"{self.detail} {span}"


SIZE_VERDICTS = ("vanishing", "exploding", "collapsed")  # one of them, at most, per layer and record


def after_other_size(win, name: str, step: int, epoch: int) -> tuple[int, int]:
    """An onset moved past the records another verdict on the gradient's size held: the smoothing window's
    first low record may be one a median still judged exploding, and a layer is never both at one record."""
    last = max((s.last_step for n, s in win.flags.items() if n != name and n in SIZE_VERDICTS), default=None)
    if last is None or step > last:
        return step, epoch
    later = [(st, ep) for st, ep, _ in win.grad if st > last]
    return later[0] if later else win.grad[-1][:2]


def first_onset(values, condition) -> tuple[int, int]:
    """The first record of the window on the flagged side of the threshold."""
    for step, epoch, v in values:
        if condition(v):
            return step, epoch
    step, epoch, _ = values[-1]
    return step, epoch


def hold(
    win, name, step, epoch, onset_step, onset_epoch, measure, higher_is_worse, detail, backdated=0, record=0
) -> None:
    state = win.flags.get(name)
    if state is None:
        onset_record = max(1, record - backdated)
        state = win.flags[name] = FlagState(name, onset_step, onset_epoch, step, epoch, onset_record=onset_record)
    state.last_record = record
    state.transient = False
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
