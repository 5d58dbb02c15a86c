"""Metrics with Keras's names, accumulated over batches (``reset``, ``update``, ``result``).

``accuracy`` resolves by the loss, as in Keras: binary_accuracy for
binary_crossentropy, categorical_accuracy for categorical_crossentropy,
sparse_categorical_accuracy for sparse_categorical_crossentropy. Targets come
in the loss's layout (integer labels for the sparse loss, rows otherwise).
"""

from __future__ import annotations

import math

import numpy as np

from dnncli.errors import DnnError, suggest


class Metric:
    direction = "max"  # whether larger is better, for callbacks in "auto" mode

    def __init__(self, name: str, from_logits: bool = False):
        self.name = name
        self.from_logits = from_logits
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def update(self, y_true, y_pred) -> None:
        self.total += float(self.batch_sum(y_true, y_pred))
        self.count += self.batch_count(y_true, y_pred)

    def batch_count(self, y_true, y_pred) -> int:
        return len(y_pred)

    def batch_sum(self, y_true, y_pred) -> float:
        raise NotImplementedError

    def result(self) -> float:
        return self.total / self.count if self.count else math.nan


class SparseCategoricalAccuracy(Metric):
    def batch_sum(self, y_true, y_pred):
        return np.count_nonzero(y_pred.argmax(axis=1) == y_true)


class CategoricalAccuracy(Metric):
    def batch_sum(self, y_true, y_pred):
        return np.count_nonzero(y_pred.argmax(axis=1) == y_true.argmax(axis=1))


def _positive(y_pred, from_logits):
    return y_pred > (0.0 if from_logits else 0.5)


class BinaryAccuracy(Metric):
    """Fraction of output units whose thresholded prediction equals the 0/1 label."""

    def batch_sum(self, y_true, y_pred):
        return np.count_nonzero(_positive(y_pred, self.from_logits) == (y_true > 0.5))

    def batch_count(self, y_true, y_pred):
        return y_pred.size


class MeanAbsoluteError(Metric):
    direction = "min"

    def batch_sum(self, y_true, y_pred):
        return np.abs(y_pred - y_true).sum(dtype=np.float64)

    def batch_count(self, y_true, y_pred):
        return y_pred.size


class MeanSquaredError(MeanAbsoluteError):
    def batch_sum(self, y_true, y_pred):
        d = (y_pred - y_true).astype(np.float64)
        return np.vdot(d, d)


class RootMeanSquaredError(MeanSquaredError):
    def result(self):
        return math.sqrt(super().result()) if self.count else math.nan


class Precision(Metric):
    """True positives over predicted positives, over all 0/1 output units (threshold 0.5)."""

    def reset(self):
        self.tp = self.fp = self.fn = 0

    def update(self, y_true, y_pred):
        pred = _positive(y_pred, self.from_logits)
        true = y_true > 0.5
        self.tp += int(np.count_nonzero(pred & true))
        self.fp += int(np.count_nonzero(pred & ~true))
        self.fn += int(np.count_nonzero(~pred & true))

    def result(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0


class Recall(Precision):
    def result(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


# accuracy adapts to the loss's target layout
_ACCURACY = {"binary": BinaryAccuracy, "one-hot": CategoricalAccuracy, "labels": SparseCategoricalAccuracy}
# name -> (class, or None for the accuracy of the loss's layout; the target layouts it needs, or None for any)
METRICS = {
    "accuracy": (None, tuple(_ACCURACY)),
    "binary_accuracy": (BinaryAccuracy, ("binary",)),
    "categorical_accuracy": (None, ("one-hot", "labels")),
    "sparse_categorical_accuracy": (SparseCategoricalAccuracy, ("labels",)),
    "mean_absolute_error": (MeanAbsoluteError, ("values", "one-hot", "binary")),
    "mean_squared_error": (MeanSquaredError, ("values", "one-hot", "binary")),
    "root_mean_squared_error": (RootMeanSquaredError, ("values", "one-hot", "binary")),
    "precision": (Precision, ("binary",)),
    "recall": (Recall, ("binary",)),
}
ALIASES = {
    "acc": "accuracy",
    "mae": "mean_absolute_error",
    "mse": "mean_squared_error",
    "rmse": "root_mean_squared_error",
}
_LAYOUTS = {
    "values": "values to regress",
    "one-hot": "one-hot class rows",
    "labels": "integer class labels",
    "binary": "0/1 labels",
}


def _check(name, loss, index):
    canonical = ALIASES.get(name, name) if isinstance(name, str) else None
    if canonical not in METRICS:
        names = list(METRICS) + list(ALIASES)
        raise DnnError(
            f"unknown metric {name!r}.{suggest(str(name), names)} Known: {', '.join(METRICS)}.", ("metrics", index)
        )
    needs = METRICS[canonical][1]
    if loss.targets not in needs:
        wanted = " or ".join(_LAYOUTS[n] for n in needs)
        raise DnnError(
            f"metric {name!r} needs targets that are {wanted}; loss {loss.name!r} takes {_LAYOUTS[loss.targets]}.",
            ("metrics", index),
        )
    return canonical


def resolve_names(names, loss, n_outputs: int) -> list[str]:
    """Validate the ``metrics`` list against the loss; return it unchanged (names as the user wrote them)."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):
        raise DnnError(f"metrics must be a list of names. Received: {names!r}", ("metrics",))
    for i, name in enumerate(names):
        _check(name, loss, i)
    if len(set(names)) != len(names):
        raise DnnError(f"metrics lists a name twice. Received: {names}", ("metrics",))
    return list(names)


def get(name: str, loss) -> Metric:
    """A fresh metric object for ``name``, adapted to the loss's target layout."""
    cls = METRICS[_check(name, loss, 0)][0] or _ACCURACY[loss.targets]
    return cls(name, from_logits=loss.from_logits)


def direction(name: str) -> str:
    """'max' if larger is better for this log key (``val_`` prefix allowed), else 'min'."""
    base = name[4:] if name.startswith("val_") else name
    if base in ("loss", "data_loss", "penalty"):
        return "min"
    canonical = ALIASES.get(base, base)
    cls = METRICS.get(canonical, (None,))[0]
    return cls.direction if cls is not None else "max"


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (labels, predicted), 1)
    return cm


def per_class_report(cm: np.ndarray) -> list[dict]:
    """Precision, recall, F1 and support of each class from a confusion matrix."""
    rows = []
    for k in range(len(cm)):
        tp = cm[k, k]
        predicted = cm[:, k].sum()
        actual = cm[k, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "class": k,
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
                "support": int(actual),
            }
        )
    return rows


def evaluate_arrays(model, loss, metric_names, x, y, batch_size=1024) -> dict:
    """Loss and metrics over (x, y) in inference mode."""
    ms = [get(name, loss) for name in metric_names]
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        total += model.loss_value(xb, yb, loss) * len(xb)
        for m in ms:
            m.update(yb, model.last_output)
    result = {"loss": total / max(len(x), 1)}
    result.update({m.name: m.result() for m in ms})
    return result
