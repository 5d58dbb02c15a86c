"""The loss's story, as the flag rules read it: has the network learned, is it learning, is its loss falling now.

Idle units in a network that has learned are capacity it does not need; a gradient that grows while the loss falls
is a network sharpening its fit. The rules ask these questions of the batch loss at each recorded step.
"""

from __future__ import annotations

import math
from collections import deque

LEARNED_CLASSES = 0.5  # a loss this fraction of an uninformed model's or less: the network has learned
LEARNED_VALUES = 0.2  # for values, where no model is uninformed: this fraction of the loss it started at
FALLING = 0.9  # a loss now at this fraction of its level four growth windows ago, or less, is falling


def median(values) -> float:
    v = sorted(values)
    n = len(v)
    if n == 0:
        return math.nan
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


class LossProgress:
    """The batch losses of the last four growth windows, and what they say.

    Parameters
    ----------
    smooth : int
        Records in a running median (the monitor's ``smooth``).
    window : int
        The growth window (the monitor's ``growth_window``).
    uninformed : float or None
        The loss of a model that knows nothing (ln C for C classes); None for values.
    """

    def __init__(self, smooth: int, window: int, uninformed: float | None = None):
        self.smooth, self.window, self.uninformed = smooth, window, uninformed
        self.losses: deque = deque(maxlen=4 * window)
        self.first = math.nan  # the median of the first `smooth` finite losses: where training started
        self._first: list[float] = []
        self.learned = False

    def add(self, loss: float | None) -> None:
        """The batch loss at the next recorded step (None where unknown: nothing is judged from it)."""
        if loss is None:
            return
        self.losses.append(loss)
        if len(self._first) < self.smooth and math.isfinite(loss):
            self._first.append(loss)
            self.first = median(self._first)
        self.learned = self._has_learned()

    def _has_learned(self) -> bool:
        """Whether the loss is now half that of a model that knows nothing, or less (where the loss says what
        that is); for values, a fifth of where training started. A network that has learned keeps the verdict
        through a spike, unless it falls back to knowing nothing."""
        recent = [v for v in list(self.losses)[-self.smooth :] if math.isfinite(v)]
        if self.uninformed is not None:
            reference, share = self.uninformed, LEARNED_CLASSES
        else:
            reference, share = self.first, LEARNED_VALUES
        if not recent or not reference > 0:
            return False
        now = median(recent)
        return now <= share * reference or (self.learned and now < reference)

    def falling(self) -> bool | None:
        """Whether the median of the last ``smooth`` losses is below the median of those before it in the growth
        window (None: not known yet)."""
        values = list(self.losses)[-self.window :]
        if len(values) < self.window:
            return None
        old, recent = values[: -self.smooth], values[-self.smooth :]
        if not all(math.isfinite(v) for v in recent):
            return False
        return median(recent) < median([v for v in old if math.isfinite(v)] or [math.inf])

    def learning(self) -> bool:
        """Whether the loss is clearly falling over the longer horizon (``FALLING``, over four growth windows),
        and is below an uninformed model's: a loss falling from an explosion back to chance is not learning."""
        values = list(self.losses)
        if len(values) < 2 * self.window or not all(math.isfinite(v) for v in values[-self.window :]):
            return False
        now, before = median(values[-self.window :]), median([v for v in values[: self.window] if math.isfinite(v)])
        below_chance = self.uninformed is None or now < self.uninformed
        return below_chance and now <= FALLING * before
