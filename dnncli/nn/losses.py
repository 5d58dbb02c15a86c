"""Losses with Keras's names, formulas and mean-over-batch reduction.

Each loss gives the mean loss of a batch (``forward``) and its gradient with
respect to the model's output (``backward``). Cross-entropies also work on
logits: with ``from_logits=True``, or fused with the output layer's softmax or
sigmoid, where ``dL/dZ = (A - Y) / N`` avoids the round trip through
``log(softmax)`` that loses precision and overflows. On probabilities Keras's
clipping to ``[1e-7, 1 - 1e-7]`` applies, so no ``log(0)`` ever happens.

Every value and gradient takes an optional ``sample_weight`` (one weight per sample, as Keras makes them
from ``fit(class_weight=...)``): the weighted loss is ``sum(w_i * l_i) / N``, Keras's "sum_over_batch_size"
reduction, whose denominator is the batch size and not the sum of the weights; its gradient is each sample's
row scaled by ``w_i``.
"""

from __future__ import annotations

import math

import numpy as np

from dnncli.errors import DnnError
from dnncli.nn.activations import sigmoid, softmax
from dnncli.nn.base_loss import EPSILON, CrossEntropy, Loss, logsumexp
from dnncli.registry import Registry

__all__ = ["EPSILON", "LOSSES", "REGISTRY", "CrossEntropy", "Loss", "get"]


class CategoricalCrossentropy(CrossEntropy):
    """``-sum(y * log(p))`` over classes, averaged over the batch; y one-hot or probabilities."""

    name = "categorical_crossentropy"
    logits_activation = "softmax"

    def uninformed(self, n_outputs: int) -> float | None:
        return math.log(n_outputs) if n_outputs > 1 else None

    def forward(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            return self.logits_forward(y_true, y_pred, sample_weight=sample_weight)
        q = y_pred / y_pred.sum(axis=-1, keepdims=True)
        np.clip(q, EPSILON, 1.0 - EPSILON, out=q)
        if sample_weight is not None:
            return self._weighted_mean(-np.einsum("ij,ij->i", y_true, np.log(q)), sample_weight)
        return float(-np.vdot(y_true, np.log(q)) / len(y_pred))

    def backward(self, y_true, y_pred, out=None, sample_weight=None):
        n = len(y_pred)
        if self.from_logits:
            return self.logits_backward(y_true, y_pred, softmax(y_pred), out, sample_weight)
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        inside = (q > EPSILON) & (q < 1.0 - EPSILON)
        np.clip(q, EPSILON, 1.0 - EPSILON, out=q)
        g = -y_true / q * inside  # dL/dq
        dot = np.einsum("ij,ij->i", g, y_pred / s)[:, None]
        return self._weigh_rows(np.divide(g - dot, s * n, out=out), sample_weight)

    def logits_forward(self, y_true, Z, A=None, sample_weight=None):
        lse = logsumexp(Z)
        if sample_weight is not None:
            return self._weighted_mean(lse - np.einsum("ij,ij->i", y_true, Z), sample_weight)
        return float((lse.sum() - np.vdot(y_true, Z)) / len(Z))

    def logits_backward(self, y_true, Z, A, out=None, sample_weight=None):
        # dL/dZ = (softmax(Z) - y) / N, valid because each row of y sums to 1
        out = np.subtract(A, y_true, out=out)
        out *= 1.0 / len(Z)
        return self._weigh_rows(out, sample_weight)

    classifies = True
    targets = "one-hot"

    def encode_labels(self, y, n_outputs, dtype):
        y = np.asarray(y)
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):  # class labels: one-hot rows
            if len(y) and (y.min() < 0 or y.max() >= n_outputs):
                bad = y[(y < 0) | (y >= n_outputs)][0]
                raise DnnError(f"label {bad} is outside the output layer's {n_outputs} classes (0..{n_outputs - 1}).")
            return np.eye(n_outputs, dtype=dtype)[y]
        return y

    def probabilities(self, output):
        return softmax(output) if self.from_logits else output

    def predicted_classes(self, probabilities):
        return probabilities.argmax(axis=1)

    def target_classes(self, y):
        return y.argmax(axis=1)

    def prepare_targets(self, y, n_outputs, dtype):
        y = super().prepare_targets(y, n_outputs, dtype)
        if n_outputs > 1 and len(y) and (np.abs(y.sum(axis=1) - 1.0) > 1e-3).any():
            raise DnnError(
                f"{self.name} needs one-hot (or probability) target rows that sum to 1;"
                " for integer class labels use sparse_categorical_crossentropy."
            )
        return y


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels instead of one-hot rows."""

    name = "sparse_categorical_crossentropy"
    targets = "labels"

    def encode_labels(self, y, n_outputs, dtype):
        return np.asarray(y)

    def target_classes(self, y):
        return y

    def _onehot(self, y_true, like):
        Y = np.zeros_like(like)
        Y[np.arange(len(like)), y_true] = 1.0
        return Y

    def forward(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            return self.logits_forward(y_true, y_pred, sample_weight=sample_weight)
        return super().forward(self._onehot(y_true, y_pred), y_pred, sample_weight)

    def backward(self, y_true, y_pred, out=None, sample_weight=None):
        if self.from_logits:
            return self.logits_backward(y_true, y_pred, softmax(y_pred), out, sample_weight)
        return super().backward(self._onehot(y_true, y_pred), y_pred, out, sample_weight)

    def logits_forward(self, y_true, Z, A=None, sample_weight=None):
        rows = np.arange(len(Z))
        if A is not None and len(Z):
            # -log(softmax(Z)[y]) from the probabilities the output layer already computed, as accurate
            # as logsumexp while they are normal numbers; a probability near underflow takes the logits path
            p = A[rows, y_true]
            if np.minimum.reduce(p) > 1e-30:
                if sample_weight is not None:
                    return self._weighted_mean(-np.log(p), sample_weight)
                return float(-np.add.reduce(np.log(p)) / len(Z))
        lse = logsumexp(Z)
        if sample_weight is not None:
            return self._weighted_mean(lse - Z[rows, y_true], sample_weight)
        return float((np.add.reduce(lse) - np.add.reduce(Z[rows, y_true])) / len(Z))

    def logits_backward(self, y_true, Z, A, out=None, sample_weight=None):
        if out is None:
            out = A.copy()
        elif out is not A:
            np.copyto(out, A)
        out[np.arange(len(Z)), y_true] -= 1.0
        out *= 1.0 / len(Z)
        return self._weigh_rows(out, sample_weight)

    def prepare_targets(self, y, n_outputs, dtype):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DnnError(
                f"{self.name} needs one integer class label per sample. Received: shape {y.shape};"
                " for one-hot rows use categorical_crossentropy."
            )
        if y.size and (not np.issubdtype(y.dtype, np.number) or (y != np.round(y)).any()):
            raise DnnError(f"{self.name} needs integer class labels. Received: {y[:5].tolist()} ...")
        labels = y.astype(np.intp)
        bad = (labels < 0) | (labels >= n_outputs)
        if bad.any():
            raise DnnError(
                f"{self.name}: label {labels[bad][0]} is outside the output layer's {n_outputs} classes"
                f" (0..{n_outputs - 1})."
            )
        return labels


class BinaryCrossentropy(CrossEntropy):
    """Independent 0/1 labels, one per output unit: mean over units, then over the batch."""

    name = "binary_crossentropy"
    logits_activation = "sigmoid"

    def uninformed(self, n_outputs: int) -> float | None:
        return math.log(2.0)

    def forward(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            return self.logits_forward(y_true, y_pred, sample_weight=sample_weight)
        p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        if sample_weight is not None:
            per_unit = y_true * np.log(p) + (1.0 - y_true) * np.log1p(-p)
            return self._weighted_mean(-per_unit.mean(axis=1), sample_weight)
        total = np.vdot(y_true, np.log(p)) + np.vdot(1.0 - y_true, np.log1p(-p))
        return float(-total / y_pred.size)

    def backward(self, y_true, y_pred, out=None, sample_weight=None):
        if self.from_logits:
            return self.logits_backward(y_true, y_pred, sigmoid(y_pred), out, sample_weight)
        inside = (y_pred > EPSILON) & (y_pred < 1.0 - EPSILON)
        p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        g = (p - y_true) / (p * (1.0 - p)) * inside
        return self._weigh_rows(np.multiply(g, 1.0 / y_pred.size, out=out), sample_weight)

    def logits_forward(self, y_true, Z, A=None, sample_weight=None):
        # max(z, 0) - z*y + log(1 + exp(-|z|)): stable for any z
        tail = np.log1p(np.exp(-np.abs(Z)))
        if sample_weight is not None:
            return self._weighted_mean((np.maximum(Z, 0) - Z * y_true + tail).mean(axis=1), sample_weight)
        total = np.maximum(Z, 0).sum() - np.vdot(Z, y_true) + tail.sum()
        return float(total / Z.size)

    def logits_backward(self, y_true, Z, A, out=None, sample_weight=None):
        out = np.subtract(A, y_true, out=out)
        out *= 1.0 / Z.size
        return self._weigh_rows(out, sample_weight)

    classifies = True
    targets = "binary"

    def probabilities(self, output):
        return sigmoid(output) if self.from_logits else output

    def predicted_classes(self, probabilities):
        # several sigmoid units are independent labels: no single class per row
        return (probabilities[:, 0] > 0.5).astype(np.int64) if probabilities.shape[1] == 1 else None

    def target_classes(self, y):
        # rounded, as Keras reads a class from a soft label
        return np.rint(y[:, 0]).astype(np.int64) if y.shape[1] == 1 else None

    def prepare_targets(self, y, n_outputs, dtype):
        y = super().prepare_targets(y, n_outputs, dtype)
        if ((y < 0) | (y > 1)).any():
            bad = y[(y < 0) | (y > 1)][0]
            raise DnnError(f"{self.name} needs targets in [0, 1]. Received: a label {bad:g}")
        return y


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def forward(self, y_true, y_pred, sample_weight=None):
        diff = y_pred - y_true
        if sample_weight is not None:
            return self._weighted_mean((diff * diff).mean(axis=1), sample_weight)
        return float(np.vdot(diff, diff) / y_pred.size)

    def backward(self, y_true, y_pred, out=None, sample_weight=None):
        out = np.subtract(y_pred, y_true, out=out)
        out *= 2.0 / y_pred.size
        return self._weigh_rows(out, sample_weight)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def forward(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            return self._weighted_mean(np.abs(y_pred - y_true).mean(axis=1), sample_weight)
        return float(np.abs(y_pred - y_true).sum() / y_pred.size)

    def backward(self, y_true, y_pred, out=None, sample_weight=None):
        out = np.subtract(y_pred, y_true, out=out)
        np.sign(out, out=out)
        out *= 1.0 / y_pred.size
        return self._weigh_rows(out, sample_weight)


class MeanSquaredLogarithmicError(Loss):
    """``mean((log(max(p, eps) + 1) - log(max(y, eps) + 1))**2)``."""

    name = "mean_squared_logarithmic_error"

    def _diff(self, y_true, y_pred):
        p = np.maximum(y_pred, EPSILON)
        return np.log1p(p) - np.log1p(np.maximum(y_true, EPSILON)), p

    def forward(self, y_true, y_pred, sample_weight=None):
        diff, _ = self._diff(y_true, y_pred)
        if sample_weight is not None:
            return self._weighted_mean((diff * diff).mean(axis=1), sample_weight)
        return float(np.vdot(diff, diff) / y_pred.size)

    def backward(self, y_true, y_pred, out=None, sample_weight=None):
        diff, p = self._diff(y_true, y_pred)
        g = 2.0 * diff / (p + 1.0) * (y_pred > EPSILON)
        return self._weigh_rows(np.multiply(g, 1.0 / y_pred.size, out=out), sample_weight)


LOSSES = {
    cls.name: cls
    for cls in (
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        BinaryCrossentropy,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanSquaredLogarithmicError,
    )
}
REGISTRY = Registry(
    "loss",
    LOSSES,
    aliases={"mse": "mean_squared_error", "mae": "mean_absolute_error", "msle": "mean_squared_logarithmic_error"},
)
REGISTRY.base = Loss


def get(spec, key=()) -> Loss:
    """Return the loss for a name (or Keras alias) or ``{name: ..., from_logits: ...}``."""
    return REGISTRY.get(spec, key)
