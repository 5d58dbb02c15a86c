"""Metrics with Keras's names, accumulated over batches (``reset``, ``update``, ``result``).

``accuracy`` resolves by the loss, as in Keras: binary_accuracy for
binary_crossentropy, categorical_accuracy for categorical_crossentropy,
sparse_categorical_accuracy for sparse_categorical_crossentropy. Targets come
in the loss's layout (integer labels for the sparse loss, rows otherwise).
Names are also accepted in any case and as Keras's class names (``AUC``,
``F1Score``, ``TopKCategoricalAccuracy``).
"""

from __future__ import annotations

import math
import re

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

    def get_state(self) -> tuple[dict, dict]:
        """(JSON-able scalars, arrays) of what has been accumulated, for a checkpoint taken mid-epoch."""
        return dict(vars(self)), {}

    def set_state(self, scalars: dict, arrays: dict) -> None:
        vars(self).update(scalars)


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


def _true_classes(y_true, k: int) -> np.ndarray:
    """The class of each target of a softmax output: integer labels as they are, one-hot rows by argmax."""
    return y_true.astype(np.intp) if y_true.ndim == 1 else y_true.argmax(axis=1)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact area under the ROC curve: the Mann-Whitney U statistic from ranks, ties counted half.

    NaN where it is undefined: no positive or no negative label, or a non-finite score.
    """
    labels = np.asarray(labels, bool)
    n_pos = int(np.count_nonzero(labels))
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0 or not np.isfinite(scores).all():
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.concatenate([[0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(ordered)]])
    ranks = np.empty(len(ordered))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # tied scores share their mean rank
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class AUC(Metric):
    """ROC AUC of 0/1 outputs, exact (from ranks, over the epoch's samples); several units are flattened into one
    label each, as Keras's ``AUC(multi_label=False)``. Scores need no sigmoid: it keeps their order."""

    def reset(self):
        self.scores: list = []
        self.labels: list = []

    def update(self, y_true, y_pred):
        self.scores.append(np.asarray(y_pred, np.float64).reshape(-1))
        self.labels.append(np.asarray(y_true).reshape(-1) > 0.5)

    def result(self):
        if not self.scores:
            return math.nan
        return roc_auc(np.concatenate(self.labels), np.concatenate(self.scores))

    def get_state(self):
        scalars = {"name": self.name, "from_logits": self.from_logits}
        if not self.scores:
            return scalars, {}
        return scalars, {"scores": np.concatenate(self.scores), "labels": np.concatenate(self.labels)}

    def set_state(self, scalars, arrays):
        self.reset()
        if "scores" in arrays:
            self.scores, self.labels = [arrays["scores"]], [arrays["labels"]]


class OneVsRestAUC(AUC):
    """ROC AUC of a softmax output: each class against the rest, averaged over the classes (macro; scikit-learn's
    ``roc_auc_score(multi_class="ovr")``); a class with no positive or no negative sample is left out."""

    def update(self, y_true, y_pred):
        probs = np.asarray(y_pred, np.float64)
        if self.from_logits:
            probs = np.exp(probs - probs.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
        self.scores.append(probs)
        self.labels.append(_true_classes(y_true, probs.shape[1]))

    def result(self):
        if not self.scores:
            return math.nan
        scores, classes = np.concatenate(self.scores), np.concatenate(self.labels)
        each = [roc_auc(classes == k, scores[:, k]) for k in range(scores.shape[1])]
        defined = [a for a in each if not math.isnan(a)]
        return float(np.mean(defined)) if defined else math.nan


class F1Score(Metric):
    """F1 of each 0/1 output unit (thresholded at 0.5), averaged over the units (macro)."""

    def reset(self):
        self.tp = self.fp = self.fn = None

    def _counts(self, y_true, y_pred):
        pred, true = _positive(y_pred, self.from_logits), y_true > 0.5
        return (pred & true).sum(axis=0), (pred & ~true).sum(axis=0), (~pred & true).sum(axis=0)

    def update(self, y_true, y_pred):
        counts = [np.asarray(c, np.int64) for c in self._counts(y_true, y_pred)]
        if self.tp is None:
            self.tp, self.fp, self.fn = counts
        else:
            self.tp, self.fp, self.fn = self.tp + counts[0], self.fp + counts[1], self.fn + counts[2]

    def result(self):
        if self.tp is None:
            return math.nan
        denominator = 2 * self.tp + self.fp + self.fn
        # a unit never positive, predicted or true, scores 0 (as Keras's F1Score)
        f1 = np.divide(2 * self.tp, denominator, out=np.zeros(len(denominator)), where=denominator > 0)
        return float(f1.mean())

    def get_state(self):
        scalars = {"name": self.name, "from_logits": self.from_logits}
        if self.tp is None:
            return scalars, {}
        return scalars, {"tp": self.tp, "fp": self.fp, "fn": self.fn}

    def set_state(self, scalars, arrays):
        self.reset()
        if "tp" in arrays:
            self.tp, self.fp, self.fn = arrays["tp"], arrays["fp"], arrays["fn"]


class CategoricalF1Score(F1Score):
    """F1 of each class of a softmax output, the predicted class being the largest output, averaged (macro)."""

    def _counts(self, y_true, y_pred):
        k = y_pred.shape[1]
        true, pred = _true_classes(y_true, k), y_pred.argmax(axis=1)
        tp = np.bincount(true[true == pred], minlength=k)
        return tp, np.bincount(pred, minlength=k) - tp, np.bincount(true, minlength=k) - tp


class TopKCategoricalAccuracy(Metric):
    """Whether the true class is among the ``k`` largest outputs (k=5, Keras's default); tied outputs at the
    boundary count as in the top k, as Keras's ``in_top_k``."""

    k = 5

    def batch_sum(self, y_true, y_pred):
        true = _true_classes(y_true, y_pred.shape[1])
        score = y_pred[np.arange(len(y_pred)), true]
        return np.count_nonzero((y_pred > score[:, None]).sum(axis=1) < self.k)


# accuracy adapts to the loss's target layout
_ACCURACY = {"binary": BinaryAccuracy, "one-hot": CategoricalAccuracy, "labels": SparseCategoricalAccuracy}
_AUC = {"binary": AUC, "one-hot": OneVsRestAUC, "labels": OneVsRestAUC}
_F1 = {"binary": F1Score, "one-hot": CategoricalF1Score, "labels": CategoricalF1Score}
# name -> (class, a class per target layout, or None for the accuracy of the loss's layout; the layouts it needs)
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
    "auc": (_AUC, tuple(_AUC)),
    "f1_score": (_F1, tuple(_F1)),
    "top_k_categorical_accuracy": (TopKCategoricalAccuracy, ("one-hot", "labels")),
    "sparse_top_k_categorical_accuracy": (TopKCategoricalAccuracy, ("labels",)),
}
ALIASES = {
    "acc": "accuracy",
    "mae": "mean_absolute_error",
    "mse": "mean_squared_error",
    "rmse": "root_mean_squared_error",
}
# names a Keras or scikit-learn user reaches for, by meaning: suggested (not accepted) for an unknown name, the
# first one the loss's targets allow
MEANINGS = {
    **dict.fromkeys(("roc", "roc_auc", "auroc", "roc_auc_score", "area_under_curve", "auc_roc"), ("auc",)),
    **dict.fromkeys(("f1", "f_1", "fscore", "f_score", "f1_macro", "macro_f1", "f_measure", "fmeasure"), ("f1_score",)),
    **dict.fromkeys(
        ("top5", "top_5", "top_5_accuracy", "top5_accuracy", "top_k", "topk", "top_k_accuracy", "top_n_accuracy"),
        ("top_k_categorical_accuracy",),
    ),
    **dict.fromkeys(("sensitivity", "tpr", "true_positive_rate", "hit_rate"), ("recall",)),
    **dict.fromkeys(("ppv", "positive_predictive_value"), ("precision",)),
    **dict.fromkeys(("error", "err", "error_rate", "misclassification"), ("accuracy", "mean_absolute_error")),
    **dict.fromkeys(("l1", "absolute_error", "mean_abs_error"), ("mean_absolute_error",)),
    **dict.fromkeys(("l2", "squared_error", "mean_square_error"), ("mean_squared_error",)),
    **dict.fromkeys(("correct", "hit", "categorical_acc", "sparse_acc", "sparse_accuracy"), ("accuracy",)),
}
# names that are no metric: the loss is always logged
LOSS_NAMES = ("loss", "val_loss", "crossentropy", "cross_entropy", "log_loss", "logloss", "nll")
_LAYOUTS = {
    "values": "values to regress",
    "one-hot": "one-hot class rows",
    "labels": "integer class labels",
    "binary": "0/1 labels",
}


def _snake(name: str) -> str:
    """``TopKCategoricalAccuracy`` -> ``top_k_categorical_accuracy``, ``AUC`` -> ``auc``, ``top-5`` -> ``top_5``."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip())
    return re.sub(r"[\s-]+", "_", name).lower()


def canonical_name(name) -> str | None:
    """The canonical name of a metric written exactly, in another case, or as its Keras class name; else None."""
    if not isinstance(name, str):
        return None
    for form in (name, _snake(name)):
        form = ALIASES.get(form, form)
        if form in METRICS:
            return form
    return None


def _unknown(name, loss, index) -> DnnError:
    known = f" Known: {', '.join(METRICS)}."
    key = _snake(name) if isinstance(name, str) else None
    if key in LOSS_NAMES:
        return DnnError(
            f"{name!r} is no metric: the loss ({loss.name}) is always logged, as loss and val_loss; metrics lists"
            f" values besides it.{known}",
            ("metrics", index),
        )
    meant = next((m for m in MEANINGS.get(key, ()) if loss.targets in METRICS[m][1]), None)
    hint = f" Did you mean {meant!r}?" if meant else suggest(str(name), list(METRICS) + list(ALIASES))
    return DnnError(f"unknown metric {name!r}.{hint}{known}", ("metrics", index))


def _check(name, loss, index):
    canonical = canonical_name(name)
    if canonical is None:
        raise _unknown(name, loss, index)
    needs = METRICS[canonical][1]
    if loss.targets not in needs:
        wanted = " or ".join(_LAYOUTS[n] for n in needs)
        raise DnnError(
            f"metric {name!r} needs targets that are {wanted}; loss {loss.name!r} takes {_LAYOUTS[loss.targets]}.",
            ("metrics", index),
        )
    return canonical


def resolve_names(names, loss, n_outputs: int) -> list[str]:
    """Validate the ``metrics`` list against the loss; return it with the names as the user wrote them, but for
    names in another case or Keras class names, which become the canonical name (``AUC`` -> ``auc``)."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):
        raise DnnError(f"metrics must be a list of names. Received: {names!r}", ("metrics",))
    exact = [isinstance(name, str) and (name in METRICS or name in ALIASES) for name in names]
    names = [name if same else _check(name, loss, i) for i, (name, same) in enumerate(zip(names, exact))]
    for i, name in enumerate(names):
        _check(name, loss, i)
    if len(set(names)) != len(names):
        raise DnnError(f"metrics lists a name twice. Received: {names}", ("metrics",))
    return list(names)


def get(name: str, loss) -> Metric:
    """A fresh metric object for ``name``, adapted to the loss's target layout."""
    cls = METRICS[_check(name, loss, 0)][0] or _ACCURACY
    if isinstance(cls, dict):
        cls = cls[loss.targets]
    return cls(name, from_logits=loss.from_logits)


def direction(name: str) -> str:
    """'max' if larger is better for this log key (``val_`` prefix allowed), else 'min'."""
    base = name[4:] if name.startswith("val_") else name
    if base in ("loss", "data_loss", "penalty"):
        return "min"
    cls = METRICS.get(canonical_name(base), (None,))[0]
    if isinstance(cls, dict):
        cls = next(iter(cls.values()))
    return cls.direction if cls is not None else "max"
