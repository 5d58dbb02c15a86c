"""Activation functions with their derivatives, Keras names and defaults.

Each activation maps pre-activations ``Z`` to outputs ``A`` and back-propagates
``dA`` to ``dZ``. Where the derivative can be written in terms of ``A`` alone
(relu, sigmoid, tanh, ...) ``needs_input`` is False and the layer may compute
``A`` in place over ``Z``, saving a buffer and a pass over memory.
"""

from __future__ import annotations

import math

import numpy as np

from dnncli.errors import check_bool, check_float
from dnncli.registry import Registry


class Activation:
    """Base class: ``forward(Z, out)`` and ``backward(Z, A, dA, out)``."""

    name = "activation"
    needs_input = False  # backward reads Z, so A must not overwrite it

    def forward(self, Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, Z, A, dA, out=None) -> np.ndarray:
        """Return dZ given the upstream gradient dA (``out`` may alias dA)."""
        raise NotImplementedError

    def __call__(self, x):
        x = np.asarray(x)
        return self.forward(x, np.empty_like(x))

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class Linear(Activation):
    name = "linear"

    def forward(self, Z, out=None):
        if out is None or out is Z:
            return Z
        np.copyto(out, Z)
        return out

    def backward(self, Z, A, dA, out=None):
        if out is None or out is dA:
            return dA
        np.copyto(out, dA)
        return out


class ReLU(Activation):
    name = "relu"

    def forward(self, Z, out=None):
        return np.maximum(Z, 0, out=out)

    def backward(self, Z, A, dA, out=None):
        return np.multiply(dA, A > 0, out=out)


class LeakyReLU(Activation):
    """``max(x, negative_slope * x)``; default slope 0.2 as ``keras.activations.leaky_relu``."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2):
        self.negative_slope = check_float(negative_slope, "leaky_relu.negative_slope", 0.0, 1.0)

    def forward(self, Z, out=None):
        # slope <= 1, so max(z, slope*z) picks z for z > 0 and slope*z below
        scaled = np.multiply(Z, self.negative_slope)
        return np.maximum(Z, scaled, out=out)

    def backward(self, Z, A, dA, out=None):
        # slope >= 0 keeps the sign of A equal to the sign of Z: scale dA where A <= 0
        if out is None:
            out = dA.copy()
        elif out is not dA:
            np.copyto(out, dA)
        np.multiply(out, self.negative_slope, out=out, where=A <= 0)
        return out

    def get_config(self):
        return {"name": self.name, "negative_slope": self.negative_slope}


def sigmoid(Z, out=None):
    """The logistic function, elementwise."""
    # 0.5 * (1 + tanh(z / 2)) never overflows, unlike 1 / (1 + exp(-z))
    out = np.multiply(Z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, Z, out=None):
        return sigmoid(Z, out)

    def backward(self, Z, A, dA, out=None):
        grad = np.subtract(1.0, A)
        grad *= A
        return np.multiply(dA, grad, out=out)


class Tanh(Activation):
    name = "tanh"

    def forward(self, Z, out=None):
        return np.tanh(Z, out=out)

    def backward(self, Z, A, dA, out=None):
        grad = np.square(A)
        np.subtract(1.0, grad, out=grad)
        return np.multiply(dA, grad, out=out)


def softmax(Z, out=None):
    """Softmax over the last axis, shifted by the row maximum for stability."""
    shift = np.maximum.reduce(Z, axis=-1, keepdims=True)
    out = np.subtract(Z, shift, out=out)
    np.exp(out, out=out)
    out /= np.add.reduce(out, axis=-1, keepdims=True)
    return out


class Softmax(Activation):
    name = "softmax"

    def forward(self, Z, out=None):
        return softmax(Z, out)

    def backward(self, Z, A, dA, out=None):
        dot = np.einsum("ij,ij->i", dA, A)[:, None]
        out = np.subtract(dA, dot, out=out)
        out *= A
        return out


class ELU(Activation):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise (Keras default alpha 1.0)."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_float(alpha, "elu.alpha", 0.0, None, low_open=True)
        self.scale = 1.0

    def forward(self, Z, out=None):
        neg = np.minimum(Z, 0.0)
        np.expm1(neg, out=neg)
        neg *= self.alpha * self.scale
        out = np.maximum(Z, 0.0, out=out)
        if self.scale != 1.0:
            out *= self.scale
        out += neg
        return out

    def backward(self, Z, A, dA, out=None):
        # for z <= 0: d/dz scale*alpha*(e^z - 1) = A + scale*alpha; alpha > 0 keeps sign(A) = sign(Z)
        grad = np.where(A > 0, self.scale, A + self.scale * self.alpha).astype(dA.dtype, copy=False)
        return np.multiply(dA, grad, out=out)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}


class SELU(ELU):
    """Self-normalizing ELU with Keras's fixed alpha and scale."""

    name = "selu"

    def __init__(self):
        self.alpha = 1.6732632423543772848170429916717
        self.scale = 1.0507009873554804934193349852946

    def get_config(self):
        return {"name": self.name}


_ERF = None


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function to double precision, without SciPy.

    NumPy has no erf. A degree-90 Chebyshev interpolant of ``math.erf`` on
    [-6, 6] matches it to within 1e-12 (checked in the tests); beyond 6,
    erf is +-1 in double precision.
    """
    global _ERF
    if _ERF is None:
        cheb = np.polynomial.chebyshev.Chebyshev.interpolate(np.vectorize(math.erf), deg=90, domain=[-6.0, 6.0])
        _ERF = cheb
    clipped = np.clip(x.astype(np.float64, copy=False), -6.0, 6.0)
    return _ERF(clipped).astype(x.dtype, copy=False)


class GELU(Activation):
    """Gaussian error linear unit; exact (erf) by default, as ``keras.activations.gelu``."""

    name = "gelu"
    needs_input = True

    def __init__(self, approximate: bool = False):
        self.approximate = check_bool(approximate, "gelu.approximate")

    _C = math.sqrt(2.0 / math.pi)

    _cache = (None, None)  # (Z, cdf or tanh term) of the last forward, reused by backward

    def _term(self, Z):
        if self._cache[0] is Z:
            return self._cache[1]
        if self.approximate:
            term = np.tanh(self._C * (Z + 0.044715 * Z**3))
        else:
            term = 0.5 * (1.0 + _erf(Z / math.sqrt(2.0)))
        self._cache = (Z, term)
        return term

    def forward(self, Z, out=None):
        self._cache = (None, None)  # Z may be a reused buffer holding new values
        term = self._term(Z)
        if self.approximate:
            return np.multiply(0.5 * Z, 1.0 + term, out=out)
        return np.multiply(Z, term, out=out)

    def backward(self, Z, A, dA, out=None):
        term = self._term(Z)
        if self.approximate:
            dinner = (1.0 - term**2) * self._C * (1.0 + 3 * 0.044715 * Z**2)
            grad = 0.5 * (1.0 + term) + 0.5 * Z * dinner
        else:
            pdf = np.exp(-0.5 * Z**2) / math.sqrt(2.0 * math.pi)
            grad = term + Z * pdf
        return np.multiply(dA, grad.astype(dA.dtype, copy=False), out=out)

    def get_config(self):
        return {"name": self.name, "approximate": self.approximate}


class Softplus(Activation):
    """``log(1 + exp(x))``, computed as ``max(x, 0) + log1p(exp(-|x|))``."""

    name = "softplus"

    def forward(self, Z, out=None):
        tail = np.abs(Z)
        np.negative(tail, out=tail)
        np.exp(tail, out=tail)
        np.log1p(tail, out=tail)
        out = np.maximum(Z, 0.0, out=out)
        out += tail
        return out

    def backward(self, Z, A, dA, out=None):
        # softplus' = sigmoid(z) = 1 - exp(-softplus(z)) = -expm1(-A), a function of A alone; written as
        # 1 - exp(-A) it cancels to exactly 0 in float32 for A below about 6e-8 (z below about -16.6)
        grad = np.negative(A)
        np.expm1(grad, out=grad)
        np.negative(grad, out=grad)
        return np.multiply(dA, grad, out=out)


class Swish(Activation):
    """``x * sigmoid(x)`` (Keras's swish, also called silu)."""

    name = "swish"
    needs_input = True

    def forward(self, Z, out=None):
        sig = sigmoid(Z)
        return np.multiply(Z, sig, out=out)

    def backward(self, Z, A, dA, out=None):
        sig = sigmoid(Z)
        # d/dz z*s(z) = s + z*s*(1-s) = s + A*(1-s)
        grad = np.subtract(1.0, sig)
        grad *= A
        grad += sig
        return np.multiply(dA, grad, out=out)


ACTIVATIONS = {
    cls.name: cls for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, ELU, SELU, GELU, Softplus, Swish)
}
REGISTRY = Registry("activation", ACTIVATIONS, aliases={"silu": "swish"})
REGISTRY.base = Activation


def get(spec, key=()) -> Activation:
    """Return the activation for a name, a ``{name: ..., args}`` mapping, or None (linear)."""
    if spec is None:
        return Linear()
    return REGISTRY.get(spec, key)
