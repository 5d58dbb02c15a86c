"""Learning-rate schedules, functions of the optimizer's step count (Keras 3 formulas).

The optimizer evaluates a schedule at its ``iterations`` before incrementing
it, so the first update uses ``schedule(0)``.
"""

from __future__ import annotations

import math
import numbers

from dnncli.errors import DnnError, check_bool, check_float, check_int
from dnncli.registry import Registry


class Schedule:
    name = "schedule"

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


class ExponentialDecay(Schedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``, the exponent floored if staircase."""

    name = "exponential_decay"

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False):
        self.initial_learning_rate = check_float(initial_learning_rate, "exponential_decay.initial_learning_rate", 0.0)
        self.decay_steps = check_int(decay_steps, "exponential_decay.decay_steps")
        self.decay_rate = check_float(decay_rate, "exponential_decay.decay_rate", 0.0, low_open=True)
        self.staircase = check_bool(staircase, "exponential_decay.staircase")

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p


class PiecewiseConstantDecay(Schedule):
    """``values[0]`` while step <= boundaries[0], ``values[i]`` while boundaries[i-1] < step <= boundaries[i]."""

    name = "piecewise_constant_decay"

    def __init__(self, boundaries: list, values: list):
        if not isinstance(boundaries, list) or not all(
            isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in boundaries
        ):
            raise DnnError(
                f"piecewise_constant_decay.boundaries must be a list of integers. Received: {boundaries!r}",
                ("boundaries",),
            )
        if any(b >= a for b, a in zip(boundaries, boundaries[1:])):
            raise DnnError(
                f"piecewise_constant_decay.boundaries must increase. Received: {boundaries!r}", ("boundaries",)
            )
        if not isinstance(values, list) or len(values) != len(boundaries) + 1:
            raise DnnError(
                "piecewise_constant_decay.values must be a list one longer than boundaries"
                f" ({len(boundaries) + 1}). Received: {values!r}",
                ("values",),
            )
        self.boundaries = list(boundaries)
        self.values = [check_float(v, "piecewise_constant_decay.values", 0.0) for v in values]

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]


class CosineDecay(Schedule):
    """Cosine decay from the initial rate (or ``warmup_target`` after a linear warmup) to ``alpha`` times it."""

    name = "cosine_decay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ):
        self.initial_learning_rate = check_float(initial_learning_rate, "cosine_decay.initial_learning_rate", 0.0)
        self.decay_steps = check_int(decay_steps, "cosine_decay.decay_steps")
        self.alpha = check_float(alpha, "cosine_decay.alpha", 0.0, 1.0)
        self.warmup_target = (
            None if warmup_target is None else check_float(warmup_target, "cosine_decay.warmup_target", 0.0)
        )
        self.warmup_steps = check_int(warmup_steps, "cosine_decay.warmup_steps", minimum=0)

    def _decay(self, step, lr0):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return lr0 * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            span = self.warmup_target - self.initial_learning_rate
            return span * step / self.warmup_steps + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)


SCHEDULES = {cls.name: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay)}
REGISTRY = Registry("learning-rate schedule", SCHEDULES)
REGISTRY.base = Schedule


def get(spec, key=()) -> Schedule:
    """Return the schedule for ``{name: cosine_decay, initial_learning_rate: ..., ...}``."""
    return REGISTRY.get(spec, key)
