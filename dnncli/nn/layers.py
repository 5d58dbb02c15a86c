"""The layers a config names (``dense``, ``activation``, ``flatten``, ``dropout``, ``batch_normalization``) and their
registry; the contract every layer keeps is in ``base_layer``."""

from __future__ import annotations

import numpy as np

from dnncli.errors import DnnError, check_bool, check_float, check_int, check_optional_seed
from dnncli.nn import activations, initializers, regularizers
from dnncli.nn.base_layer import Layer, WeightSpec, kernel_gradient
from dnncli.nn.normalization import BatchNormalization
from dnncli.registry import Registry

__all__ = [
    "LAYERS",
    "REGISTRY",
    "ActivationLayer",
    "BatchNormalization",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "WeightSpec",
    "get",
    "kernel_gradient",
]


class Dense(Layer):
    """``A = activation(X @ kernel + bias)``, kernel of shape (fan_in, units) as in Keras."""

    type_name = "dense"
    keep_logits = False

    @property
    def logits(self):
        return self.Z

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        name: str | None = None,
    ):
        super().__init__(name)
        self.units = check_int(units, "dense.units")
        self.activation = activations.get(activation, "activation")
        self.use_bias = check_bool(use_bias, "dense.use_bias")
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer = regularizers.get(kernel_regularizer, "kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, "bias_regularizer")

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise DnnError(
                f"dense expects a flat input (features,). Received: input shape {list(input_shape)};"
                " put a flatten layer before it."
            )
        return (self.units,)

    def build(self, input_shape, dtype):
        shape = super().build(input_shape, dtype)
        self.add_weight("kernel", (input_shape[0], self.units), self.kernel_initializer, True, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, True, self.bias_regularizer)
        return shape

    def forward(self, X, training=False):
        Z = self._buffer("Z", (len(X), self.units))
        np.matmul(X, self.params["kernel"], out=Z)
        if self.use_bias:
            Z += self.params["bias"]
        # an activation whose derivative needs only A is computed in place over Z,
        # unless Z is wanted as logits by a fused loss
        in_place = not (self.activation.needs_input or self.keep_logits)
        A = Z if in_place else self._buffer("A", Z.shape)
        self.activation.forward(Z, out=A)
        self.X, self.Z, self.A = X, Z, A
        return A

    def backward(self, dA, skip_activation=False):
        if skip_activation:
            dZ = dA
        else:
            dZ = self.activation.backward(self.Z, self.A, dA, out=self._buffer("dZ", dA.shape))
        kernel_gradient(self.X, dZ, self.grads["kernel"])
        self.dZ = dZ  # with self.X, each sample's share of the kernel gradient (the gradient noise scale reads it)
        if self.use_bias:
            np.add.reduce(dZ, axis=0, out=self.grads["bias"])
        if not self.needs_input_grad:
            return None
        return np.matmul(dZ, self.params["kernel"].T, out=self._buffer("dX", self.X.shape))

    def get_config(self):
        cfg = {
            "type": self.type_name,
            "units": self.units,
            "activation": self.activation.get_config(),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer.get_config(),
            "bias_initializer": self.bias_initializer.get_config(),
            "kernel_regularizer": self.kernel_regularizer and self.kernel_regularizer.get_config(),
            "bias_regularizer": self.bias_regularizer and self.bias_regularizer.get_config(),
        }
        return cfg


class ActivationLayer(Layer):
    """An activation function applied as a layer of its own."""

    type_name = "activation"
    keep_logits = False

    @property
    def logits(self):
        return self.X

    def __init__(self, activation, name: str | None = None):
        super().__init__(name)
        self.activation = activations.get(activation, "activation")

    def forward(self, X, training=False):
        A = self._buffer("A", X.shape)
        self.activation.forward(X, out=A)
        self.X, self.A = X, A
        return A

    def backward(self, dA, skip_activation=False):
        if not self.needs_input_grad:
            return None
        if skip_activation:
            return dA
        return self.activation.backward(self.X, self.A, dA, out=self._buffer("dX", dA.shape))

    def get_config(self):
        return {"type": self.type_name, "activation": self.activation.get_config()}


class Flatten(Layer):
    """Reshape (samples, d1, d2, ...) to (samples, d1 * d2 * ...); no copy when contiguous."""

    type_name = "flatten"

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, X, training=False):
        self.in_shape = X.shape
        return X.reshape(len(X), -1)

    def backward(self, dY):
        return dY.reshape(self.in_shape) if self.needs_input_grad else None


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate`` and scale the rest by 1/(1-rate)."""

    type_name = "dropout"

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None):
        super().__init__(name)
        self.rate = check_float(rate, "dropout.rate", 0.0, 1.0, high_open=True)
        self.seed = check_optional_seed(seed, "dropout.seed")
        self.rng = np.random.default_rng(self.seed)
        self.mask = None

    def seed_generators(self, rng):
        if self.seed is None:
            self.rng = np.random.default_rng(rng.integers(2**63))

    def generators(self):
        return {"dropout": self.rng}

    def forward(self, X, training=False):
        if not training or self.rate == 0.0:
            self.mask = None
            return X
        mask = self._buffer("mask", X.shape)
        self.rng.random(out=mask, dtype=mask.dtype)
        keep = np.greater_equal(mask, self.rate, out=self._bool_buffer(X.shape))
        np.multiply(keep, mask.dtype.type(1.0 / (1.0 - self.rate)), out=mask)
        self.mask = mask
        return np.multiply(X, mask, out=self._buffer("Y", X.shape))

    def _bool_buffer(self, shape):
        buf = self._buffers.get(("keep", shape))
        if buf is None:
            buf = self._buffers[("keep", shape)] = np.empty(shape, bool)
        return buf

    def backward(self, dY):
        if not self.needs_input_grad:
            return None
        if self.mask is None:
            return dY
        return np.multiply(dY, self.mask, out=self._buffer("dX", dY.shape))

    def get_config(self):
        return {"type": self.type_name, "rate": self.rate, "seed": self.seed}


LAYERS = {cls.type_name: cls for cls in (Dense, Dropout, BatchNormalization, Flatten, ActivationLayer)}
REGISTRY = Registry("layer", LAYERS, key_field="type")
REGISTRY.base = Layer


def get(spec, key=()) -> Layer:
    """Return a new layer from ``{type: dense, units: 64, ...}`` (or a Layer, unchanged)."""
    return REGISTRY.get(spec, key)
