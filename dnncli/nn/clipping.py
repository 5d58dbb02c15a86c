"""Gradient clipping as Keras 3's optimizers do it, before the update: by each variable's norm (``clipnorm``), by
value (``clipvalue``), or by the norm of all gradients together (``global_clipnorm``); at most one of them."""

from __future__ import annotations

import math

import numpy as np

from dnncli.errors import DnnError, check_float

KINDS = ("clipnorm", "clipvalue", "global_clipnorm")


def check_clip(value, key: str) -> float | None:
    """One clipping value: None (not set) or a number > 0."""
    return None if value is None else check_float(value, key, 0.0, low_open=True)


class Clipping:
    """The clipping rule of one optimizer (named ``owner`` in errors): at most one of the three set, each checked by
    ``check_clip``; no rule when all three are None."""

    def __init__(self, clipnorm=None, clipvalue=None, global_clipnorm=None, owner: str = "optimizer"):
        values = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        chosen = [k for k in KINDS if values[k] is not None]
        if len(chosen) > 1:
            raise DnnError(
                f"{owner}: only one of clipnorm, clipvalue and global_clipnorm can be set."
                f" Received: {', '.join(f'{k}={values[k]}' for k in chosen)}",
                (chosen[1],),
            )
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm

    def __call__(self, grads) -> None:
        """Clip ``grads`` (a list of arrays) in place."""
        if self.clipnorm is not None:
            for g in grads:
                norm = math.sqrt(float(np.vdot(g, g)))
                if norm > self.clipnorm:
                    g *= self.clipnorm / norm
        elif self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if not math.isfinite(norm):
                scale = math.nan  # as Keras: a non-finite norm poisons the step, so it is noticed
            else:
                scale = self.global_clipnorm / max(norm, self.global_clipnorm)
            if scale != 1.0:
                for g in grads:
                    g *= scale
        elif self.clipvalue is not None:
            for g in grads:
                np.clip(g, -self.clipvalue, self.clipvalue, out=g)
