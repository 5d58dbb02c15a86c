"""A model scored on a whole split: the loss and metrics in inference mode, the confusion matrix and each class's
precision, recall, F1 and support."""

from __future__ import annotations

import numpy as np

from dnncli.train.metrics import get


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
