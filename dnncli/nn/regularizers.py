"""Weight penalties with Keras's meaning: ``l1 * sum|w| + l2 * sum(w**2)``.

The penalty is added once per batch to the mean data loss, unscaled by the
batch size, exactly as Keras adds ``model.losses``. (Course notes often write
``lambda / (2 m) * sum(w**2)``; dnncli follows Keras, so ``l2`` here is that
``lambda / (2 m)``.)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dnncli.errors import check_float
from dnncli.registry import Registry


class Regularizer:
    """``l1 * sum|w| + l2 * sum(w**2)``; the subclasses only set defaults."""

    name = "l1_l2"

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_float(l1, f"{self.name}.l1", 0.0, None)
        self.l2 = check_float(l2, f"{self.name}.l2", 0.0, None)

    def penalty(self, W: np.ndarray) -> float:
        """The penalty of ``W``, as a Python float."""
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(W).sum(dtype=np.float64))
        if self.l2:
            total += self.l2 * float(np.vdot(W, W))
        return total

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        """Add d(penalty)/dW to ``dW`` in place."""
        tmp = getattr(self, "_scratch", None)
        if tmp is None or tmp.shape != W.shape or tmp.dtype != W.dtype:
            tmp = self._scratch = np.empty_like(W)
        if self.l1:
            np.sign(W, out=tmp)
            tmp *= self.l1
            dW += tmp
        if self.l2:
            np.multiply(W, 2.0 * self.l2, out=tmp)
            dW += tmp

    def get_config(self) -> dict:
        return {"name": self.name, "l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    name = "l1"

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1, l2=0.0)

    def get_config(self):
        return {"name": self.name, "l1": self.l1}


class L2(Regularizer):
    name = "l2"

    def __init__(self, l2: float = 0.01):
        super().__init__(l1=0.0, l2=l2)

    def get_config(self):
        return {"name": self.name, "l2": self.l2}


class L1L2(Regularizer):
    """Both penalties; Keras 3's defaults are 0.0 for each, so name the factors."""

    name = "l1_l2"


REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2}
REGISTRY = Registry("regularizer", REGULARIZERS, aliases={"l1l2": "l1_l2"})
REGISTRY.base = Regularizer


def get(spec, key=()) -> Regularizer | None:
    """Return the regularizer for a name or mapping, or None for None.

    A mapping of factors alone is Keras's spelling of the class: ``{l2: 0.01}`` is ``L2(0.01)``, ``{l1: 0.01}``
    ``L1(0.01)``, and ``{l1: 0.01, l2: 0.01}`` ``L1L2(0.01, 0.01)``.
    """
    if spec is None:
        return None
    if isinstance(spec, Mapping) and spec and "name" not in spec and set(spec) <= {"l1", "l2"}:
        spec = {"name": "l1_l2" if len(spec) == 2 else next(iter(spec)), **spec}
    return REGISTRY.get(spec, key)
