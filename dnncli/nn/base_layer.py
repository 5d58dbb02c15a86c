"""Layers: config in ``__init__``, weights declared in ``build``, maths in ``forward``/``backward``.

The contract, one per layer: ``forward(X, training)`` caches what ``backward``
needs and returns the output; ``backward(dY)`` fills ``self.grads`` and returns
``dX`` (or None when the model says no layer below needs it). Arrays returned
are layer-owned buffers, reused on the next batch of the same size: copy them
to keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnncli.errors import DnnError
from dnncli.nn import initializers, regularizers


@dataclass
class WeightSpec:
    """A weight a layer declares in ``build``; the model allocates and initializes it."""

    name: str
    shape: tuple
    initializer: initializers.Initializer
    trainable: bool = True
    regularizer: regularizers.Regularizer | None = None


def kernel_gradient(X: np.ndarray, dZ: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``X.T @ dZ`` into ``out``: a dense layer's kernel gradient."""
    if len(X) == 1:
        # one sample: an outer product, which a broadcast multiply writes 4x faster than a matrix
        # product with an inner dimension of 1 (stochastic mode's hot spot)
        return np.multiply(X.T, dZ, out=out)
    return np.matmul(X.T, dZ, out=out)


class Layer:
    """Base class. ``params`` holds every weight, ``grads`` the trainable ones' gradients."""

    type_name = "layer"

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name):
            raise DnnError(f"{self.type_name}.name must be a non-empty string. Received: {name!r}", ("name",))
        self.name = name
        self.specs: list[WeightSpec] = []
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.dtype = np.dtype("float32")
        self.needs_input_grad = True
        self._buffers: dict = {}

    # lifecycle -------------------------------------------------------------
    def build(self, input_shape: tuple, dtype) -> tuple:
        """Declare weights for ``input_shape`` (no batch axis); return the output shape."""
        self.input_shape = tuple(input_shape)
        self.dtype = np.dtype(dtype)
        self.output_shape = self.compute_output_shape(self.input_shape)
        return self.output_shape

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def add_weight(self, name, shape, initializer, trainable=True, regularizer=None) -> None:
        self.specs.append(WeightSpec(name, tuple(shape), initializer, trainable, regularizer))

    def seed_generators(self, rng: np.random.Generator) -> None:
        """Give the layer its own random generators, if it uses any (dropout)."""

    def check_initial_weights(self) -> None:
        """Refuse initial weights no training can use: a value the dtype cannot hold (a constant of 1e39 in
        float32) would make every step non-finite."""
        for s in self.specs:
            if not np.isfinite(self.params[s.name]).all():
                raise DnnError(
                    f"{self.name}: {s.name}_initializer gives values {self.params[s.name].dtype} cannot hold."
                    f" Received: {s.name}_initializer={s.initializer.get_config()}"
                )

    def generators(self) -> dict[str, np.random.Generator]:
        """The layer's random generators by name, for checkpoints."""
        return {}

    # maths -------------------------------------------------------------------
    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dY: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def _buffer(self, tag: str, shape: tuple) -> np.ndarray:
        # one buffer per (purpose, shape): the last, smaller batch of an epoch gets its own
        buf = self._buffers.get((tag, shape))
        if buf is None:
            if len(self._buffers) > 24:
                self._buffers.clear()
            buf = self._buffers[(tag, shape)] = np.empty(shape, self.dtype)
        return buf

    # description -------------------------------------------------------------
    def count_params(self) -> tuple[int, int]:
        """(trainable, non-trainable) parameter counts."""
        trainable = sum(int(np.prod(s.shape)) for s in self.specs if s.trainable)
        frozen = sum(int(np.prod(s.shape)) for s in self.specs if not s.trainable)
        return trainable, frozen

    def get_config(self) -> dict:
        return {"type": self.type_name}
