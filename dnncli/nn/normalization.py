"""Batch normalization (Ioffe and Szegedy, 2015), as Keras 3's ``BatchNormalization``: batch statistics in training,
moving ones at inference."""

from __future__ import annotations

import numpy as np

from dnncli.errors import DnnError, check_bool, check_float
from dnncli.nn import initializers
from dnncli.nn.base_layer import Layer


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

    def check_initial_weights(self) -> None:
        super().check_initial_weights()
        if (self.params["moving_variance"] + self.epsilon <= 0).any():
            raise DnnError(
                f"{self.name}: a variance is never negative, and moving_variance + epsilon divides under a square"
                " root at inference: use moving_variance_initializer: ones."
                f" Received: moving_variance_initializer={self.moving_variance_initializer.get_config()}"
            )

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
