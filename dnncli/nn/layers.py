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

from dnncli.errors import DnnError, check_bool, check_float, check_int, check_optional_seed
from dnncli.nn import activations, initializers, regularizers
from dnncli.registry import Registry


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


class BatchNormalization(Layer):
    """Normalize each feature by batch statistics in training, moving statistics in inference.

    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the biased batch
    variance, and ``moving = moving * momentum + batch * (1 - momentum)``, as Keras.
    """

    type_name = "batch_normalization"
    stats_nonfinite = False  # the last training batch's statistics were not finite (and were not folded in)

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        name: str | None = None,
    ):
        super().__init__(name)
        self.momentum = check_float(momentum, "batch_normalization.momentum", 0.0, 1.0)
        self.epsilon = check_float(epsilon, "batch_normalization.epsilon", 0.0, None, low_open=True)
        self.center = check_bool(center, "batch_normalization.center")
        self.scale = check_bool(scale, "batch_normalization.scale")
        self.beta_initializer = initializers.get(beta_initializer, "beta_initializer")
        self.gamma_initializer = initializers.get(gamma_initializer, "gamma_initializer")
        self.moving_mean_initializer = initializers.get(moving_mean_initializer, "moving_mean_initializer")
        self.moving_variance_initializer = initializers.get(moving_variance_initializer, "moving_variance_initializer")

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise DnnError(
                "batch_normalization expects a flat input (features,)."
                f" Received: input shape {list(input_shape)}; put a flatten layer before it."
            )
        return input_shape

    def build(self, input_shape, dtype):
        shape = super().build(input_shape, dtype)
        n = input_shape[0]
        if self.scale:
            self.add_weight("gamma", (n,), self.gamma_initializer)
        if self.center:
            self.add_weight("beta", (n,), self.beta_initializer)
        self.add_weight("moving_mean", (n,), self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", (n,), self.moving_variance_initializer, trainable=False)
        return shape

    def _affine(self, inv_std):
        gamma = self.params["gamma"] if self.scale else 1.0
        return gamma * inv_std

    def forward(self, X, training=False):
        Y = self._buffer("Y", X.shape)
        self.training, self.X = training, X
        if not training:
            k = self._affine(1.0 / np.sqrt(self.params["moving_variance"] + self.epsilon))
            shift = -self.params["moving_mean"] * k
            if self.center:
                shift += self.params["beta"]
            np.multiply(X, k, out=Y)
            Y += shift
            return Y
        n = len(X)
        mean = X.mean(axis=0)
        xhat = np.subtract(X, mean, out=self._buffer("xhat", X.shape))
        var = np.einsum("ij,ij->j", xhat, xhat) / n
        inv_std = 1.0 / np.sqrt(var + self.epsilon)
        xhat *= inv_std
        if self.scale:
            np.multiply(xhat, self.params["gamma"], out=Y)
        else:
            np.copyto(Y, xhat)
        if self.center:
            Y += self.params["beta"]
        # a sample far out of range overflows the batch variance; folded into the moving statistics it would
        # leave them infinite for good (the layer then outputs a constant at inference): they keep their last
        # finite values instead, and the trainer treats the batch as non-finite (stop, or skip_batch)
        self.stats_nonfinite = not (np.isfinite(mean).all() and np.isfinite(var).all())
        if not self.stats_nonfinite:
            m = self.momentum
            for name, batch in (("moving_mean", mean), ("moving_variance", var)):
                moving = self.params[name]
                moving *= m
                moving += (1.0 - m) * batch
        self.xhat, self.inv_std = xhat, inv_std
        return Y

    def backward(self, dY):
        if not self.training:
            return self._backward_inference(dY)
        n = len(dY)
        dbeta = dY.sum(axis=0)
        dgamma = np.einsum("ij,ij->j", dY, self.xhat)
        if self.scale:
            self.grads["gamma"][...] = dgamma
        if self.center:
            self.grads["beta"][...] = dbeta
        if not self.needs_input_grad:
            return None
        # dX = gamma * inv_std * (dY - (dbeta + xhat * dgamma) / n)
        dX = np.multiply(self.xhat, dgamma / n, out=self._buffer("dX", dY.shape))
        dX += dbeta / n
        np.subtract(dY, dX, out=dX)
        dX *= self._affine(self.inv_std)
        return dX

    def _backward_inference(self, dY):
        # the moving statistics are constants here: the layer is an affine map
        inv_std = 1.0 / np.sqrt(self.params["moving_variance"] + self.epsilon)
        if self.scale:
            xhat = (self.X - self.params["moving_mean"]) * inv_std
            self.grads["gamma"][...] = np.einsum("ij,ij->j", dY, xhat)
        if self.center:
            self.grads["beta"][...] = dY.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return np.multiply(dY, self._affine(inv_std), out=self._buffer("dX", dY.shape))

    def get_config(self):
        return {
            "type": self.type_name,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer.get_config(),
            "gamma_initializer": self.gamma_initializer.get_config(),
            "moving_mean_initializer": self.moving_mean_initializer.get_config(),
            "moving_variance_initializer": self.moving_variance_initializer.get_config(),
        }


LAYERS = {cls.type_name: cls for cls in (Dense, Dropout, BatchNormalization, Flatten, ActivationLayer)}
REGISTRY = Registry("layer", LAYERS, key_field="type")
REGISTRY.base = Layer


def get(spec, key=()) -> Layer:
    """Return a new layer from ``{type: dense, units: 64, ...}`` (or a Layer, unchanged)."""
    return REGISTRY.get(spec, key)
