"""Metrics against their formulas written out by hand."""

import json

import numpy as np
import pytest

from dnncli.errors import DnnError
from dnncli.nn import losses
from dnncli.nn.activations import softmax
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


# auc, f1_score, top-k, and names as a Keras user writes them ---------------------------------------------------------
sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_auc_is_the_exact_roc_auc_with_ties_as_scikit_learn():
    y = np.array([[0], [0], [1], [1], [0], [1], [1], [0]], np.float32)
    p = np.array([[0.1], [0.4], [0.35], [0.8], [0.4], [0.4], [0.9], [0.2]], np.float32)  # ties at 0.4
    # by hand: 16 (positive, negative) pairs; a positive above a negative counts 1, a tie 1/2
    pairs = [(a, b) for a in p[y == 1] for b in p[y == 0]]
    by_hand = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert _run("auc", "binary_crossentropy", y, p, batches=3) == pytest.approx(by_hand, abs=1e-12)
    assert by_hand == pytest.approx(sklearn_metrics.roc_auc_score(y[:, 0], p[:, 0]))
    logits = np.log(p / (1 - p))  # sigmoid keeps the order: the same AUC from logits
    m = metrics.get("AUC", losses.get({"name": "binary_crossentropy", "from_logits": True}))
    m.update(y, logits)
    assert m.result() == pytest.approx(by_hand)
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, (300, 1)).astype(float), rng.uniform(size=(300, 1)).round(2)
    expected = sklearn_metrics.roc_auc_score(y[:, 0], p[:, 0])
    assert _run("auc", "binary_crossentropy", y, p, batches=7) == pytest.approx(expected, abs=1e-12)
    one_class = metrics.get("auc", losses.get("binary_crossentropy"))
    one_class.update(np.ones((3, 1)), np.array([[0.2], [0.5], [0.9]]))
    assert np.isnan(one_class.result())  # undefined with one class, as scikit-learn refuses it


def test_auc_of_a_softmax_is_one_vs_rest_macro_as_scikit_learn():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(120, 4))
    labels = rng.integers(0, 4, 120)
    probs = softmax(z.copy())
    expected = sklearn_metrics.roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    assert _run("auc", "sparse_categorical_crossentropy", labels, probs, 4) == pytest.approx(expected, abs=1e-12)
    assert _run("auc", "categorical_crossentropy", np.eye(4)[labels], probs, 4) == pytest.approx(expected, abs=1e-12)
    from_logits = {"name": "sparse_categorical_crossentropy", "from_logits": True}
    assert _run("auc", from_logits, labels, z, 4) == pytest.approx(expected, abs=1e-12)


def test_f1_score_macro_by_hand_and_as_scikit_learn():
    y = np.array([[1], [1], [1], [0], [0], [0], [1], [0]], np.float32)
    p = np.array([[0.9], [0.4], [0.7], [0.6], [0.2], [0.1], [0.8], [0.55]], np.float32)
    # tp 3 (rows 0, 2, 6), fp 2 (rows 3, 7), fn 1 (row 1): 2 * 3 / (2 * 3 + 2 + 1)
    assert _run("f1_score", "binary_crossentropy", y, p) == pytest.approx(6 / 9)
    assert _run("F1Score", "binary_crossentropy", y, p) == pytest.approx(sklearn_metrics.f1_score(y, p > 0.5))
    rng = np.random.default_rng(3)
    labels, probs = rng.integers(0, 3, 90), softmax(rng.normal(size=(90, 3)))
    expected = sklearn_metrics.f1_score(labels, probs.argmax(axis=1), average="macro")
    assert _run("f1_score", "sparse_categorical_crossentropy", labels, probs, 4) == pytest.approx(expected)
    assert _run("f1_score", "categorical_crossentropy", np.eye(3)[labels], probs, 4) == pytest.approx(expected)
    # a class never true nor predicted scores 0 in the mean, as Keras's F1Score over its units
    assert _run("f1_score", "sparse_categorical_crossentropy", np.array([0, 1]), np.eye(3)[[0, 1]], 1) == 2 / 3


def test_top_k_categorical_accuracy_by_hand_and_as_scikit_learn():
    p = np.array([[0.1, 0.2, 0.3, 0.05, 0.05, 0.15, 0.15], [0.9, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01]], np.float32)
    # row 0: class 3 (0.05) has 5 outputs above it: out of the top 5; row 1: class 5 (0.01) has 4 above it, and
    # shares the 5th place with classes 4 and 6: in
    assert _run("top_k_categorical_accuracy", "sparse_categorical_crossentropy", np.array([3, 5]), p, 1) == 0.5
    assert _run("top_k_categorical_accuracy", "sparse_categorical_crossentropy", np.array([4, 0]), p, 1) == 0.5
    rng = np.random.default_rng(4)
    labels, z = rng.integers(0, 9, 200), rng.normal(size=(200, 9))
    expected = sklearn_metrics.top_k_accuracy_score(labels, z, k=5, labels=np.arange(9))
    for name in ("TopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy"):
        assert _run(name, "sparse_categorical_crossentropy", labels, z, 3) == pytest.approx(expected)
    assert _run("top_k_categorical_accuracy", "categorical_crossentropy", np.eye(9)[labels], z, 3) == pytest.approx(
        expected
    )
    with pytest.raises(DnnError, match="integer class labels"):
        metrics.get("sparse_top_k_categorical_accuracy", losses.get("categorical_crossentropy"))


def test_metric_names_in_any_case_or_as_keras_classes_resolve_to_the_canonical_name():
    sparse = losses.get("sparse_categorical_crossentropy")
    written = ["AUC", "F1Score", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "acc", "Accuracy"]
    assert metrics.resolve_names(written, sparse, 3) == [
        "auc",
        "f1_score",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
        "acc",  # an alias written as such keeps its name, as Keras logs it
        "accuracy",
    ]
    assert metrics.resolve_names(["MSE", "RootMeanSquaredError"], losses.get("mse"), 1) == [
        "mean_squared_error",
        "root_mean_squared_error",
    ]
    assert metrics.direction("val_AUC") == "max" and metrics.direction("f1_score") == "max"
    with pytest.raises(DnnError, match="twice"):
        metrics.resolve_names(["auc", "AUC"], sparse, 3)


@pytest.mark.parametrize(
    "name,loss,meant",
    [
        ("roc", "binary_crossentropy", "auc"),
        ("ROC AUC", "sparse_categorical_crossentropy", "auc"),
        ("f1", "binary_crossentropy", "f1_score"),
        ("top5", "sparse_categorical_crossentropy", "top_k_categorical_accuracy"),
        ("top_5_accuracy", "categorical_crossentropy", "top_k_categorical_accuracy"),
        ("error", "sparse_categorical_crossentropy", "accuracy"),
        ("error", "mse", "mean_absolute_error"),
        ("sensitivity", "binary_crossentropy", "recall"),
    ],
)
def test_an_unknown_metric_is_answered_by_meaning(name, loss, meant):
    with pytest.raises(DnnError, match=f"unknown metric '{name}'. Did you mean '{meant}'\\?"):
        metrics.resolve_names([name], losses.get(loss), 2)


def test_loss_is_no_metric():
    with pytest.raises(DnnError, match=r"'loss' is no metric: the loss .* is always logged"):
        metrics.resolve_names(["loss"], losses.get("mse"), 1)


def test_training_metrics_keep_their_state_across_a_checkpoint():
    from dnncli.train.callbacks import TrainMetrics

    loss = losses.get("sparse_categorical_crossentropy")
    rng = np.random.default_rng(6)
    labels, probs = rng.integers(0, 3, 40), softmax(rng.normal(size=(40, 3)))
    names = ["auc", "f1_score", "accuracy"]
    whole, cut = TrainMetrics(names, loss), TrainMetrics(names, loss)
    for m in whole.metrics + cut.metrics:
        m.update(labels[:25], probs[:25])
    scalars, arrays = cut.get_state()
    json.dumps(scalars)  # the checkpoint keeps scalars as JSON
    resumed = TrainMetrics(names, loss)
    resumed.set_state(scalars, arrays)
    for m in whole.metrics + resumed.metrics:
        m.update(labels[25:], probs[25:])
    assert [m.result() for m in resumed.metrics] == [m.result() for m in whole.metrics]
