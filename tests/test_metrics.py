"""Metrics against their formulas written out by hand."""

import numpy as np
import pytest

from dnncli.nn import losses
from dnncli.train import metrics


def _run(name, loss, y_true, y_pred, batches=2):
    m = metrics.get(name, losses.get(loss))
    for yt, yp in zip(np.array_split(y_true, batches), np.array_split(y_pred, batches)):
        m.update(yt, yp)
    return m.result()


def test_precision_and_recall_by_hand():
    y = np.array([[1], [1], [1], [0], [0], [0], [1], [0]], np.float32)
    p = np.array([[0.9], [0.4], [0.7], [0.6], [0.2], [0.1], [0.8], [0.55]], np.float32)
    # predicted positive (> 0.5): rows 0, 2, 3, 6, 7; true positive among them: 0, 2, 6
    assert _run("precision", "binary_crossentropy", y, p) == pytest.approx(3 / 5)
    assert _run("recall", "binary_crossentropy", y, p) == pytest.approx(3 / 4)  # row 1 missed
    logits = np.log(p / (1 - p))  # the same decisions from logits
    m = metrics.get("precision", losses.get({"name": "binary_crossentropy", "from_logits": True}))
    m.update(y, logits)
    assert m.result() == pytest.approx(3 / 5)
    empty = metrics.get("precision", losses.get("binary_crossentropy"))
    empty.update(y, np.zeros_like(p))
    assert empty.result() == 0.0  # nothing predicted positive: 0, not NaN


def test_mae_mse_rmse_by_hand():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(37, 2))
    p = rng.normal(size=(37, 2))
    assert _run("mae", "mse", y, p, batches=3) == pytest.approx(np.abs(y - p).mean(), rel=1e-12)
    assert _run("mse", "mse", y, p, batches=3) == pytest.approx(((y - p) ** 2).mean(), rel=1e-12)
    assert _run("rmse", "mse", y, p, batches=3) == pytest.approx(np.sqrt(((y - p) ** 2).mean()), rel=1e-12)


def test_accuracy_follows_the_loss_target_layout():
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]], np.float32)
    assert _run("accuracy", "sparse_categorical_crossentropy", np.array([0, 1, 1]), probs, 1) == pytest.approx(2 / 3)
    onehot = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    assert _run("accuracy", "categorical_crossentropy", onehot, probs, 1) == pytest.approx(2 / 3)
    assert _run("accuracy", "binary_crossentropy", probs[:, :1] * 0 + [[1], [0], [1]], probs[:, :1], 1) == 1.0
    with pytest.raises(Exception, match="needs targets that are"):
        metrics.get("precision", losses.get("sparse_categorical_crossentropy"))
