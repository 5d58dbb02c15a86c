"""Runs end to end: regression with target scaling, logits, full batches, schedules and best weights across a resume."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli import app
from dnncli.experiment.config import load
from dnncli.experiment.evaluate import load_run
from dnncli.experiment.prepare import prepare_data
from dnncli.experiment.run import TrainingRun
from dnncli.nn.activations import softmax
from dnncli.train.trainer import Callback
from tests.conftest import stopped_and_resumed


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


REGRESSION = {
    "seed": 3,
    "data": {
        "source": "synthetic",
        "generator": "regression",
        "n_samples": 600,
        "n_features": 3,
        "scale": "standardize",
        "target_scale": "standardize",
    },
    "model": {
        "input_shape": [3],
        "layers": [{"type": "dense", "units": 32, "activation": "relu"}, {"type": "dense", "units": 1}],
    },
    "loss": "mse",
    "metrics": ["mae", "rmse"],
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 15, "batch_size": 32},
}


def test_regression_target_scale_is_undone_by_predict_and_eval_reports_metrics(tmp_path):
    spec = REGRESSION | {"data": REGRESSION["data"] | {"target_scale": 10.0}}
    out = tmp_path / "run"
    assert run("train", write(tmp_path / "r.yaml", spec), "--out", out, "--quiet").exit_code == 0
    config, model, loss, prep = load_run(out)
    d = prepare_data(config, model, loss, prep)
    x_raw = np.random.default_rng(9).uniform(-2, 2, size=(25, 3))
    np.save(tmp_path / "x.npy", x_raw)
    r = run("predict", out, tmp_path / "x.npy")
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(r.output.splitlines()))
    assert rows[0] == ["y_0"]
    predicted = np.array([float(v[0]) for v in rows[1:]])
    # by hand: the input scaling, the model, then the target scaling (divided by 10) undone
    by_hand = model.predict(prep.inputs.transform(x_raw, model.dtype))[:, 0].astype(np.float64) * 10.0
    np.testing.assert_allclose(predicted, by_hand, rtol=1e-5)
    truth = np.sin(x_raw[:, 0]) + 0.5 * x_raw[:, 1] ** 2 - 0.3 * x_raw[:, 0] * x_raw[:, 1] + x_raw[:, 2] * 0.5
    assert np.abs(predicted - truth).mean() < 0.5 * truth.std()  # it learned, in the data's units
    report = json.loads(run("eval", out, "--json").output)
    assert set(report) >= {"loss", "mae", "rmse"} and "confusion_matrix" not in report
    assert report["rmse"] >= report["mae"] > 0
    assert report["loss"] == pytest.approx(float(np.mean((model.predict(d.x_test) - d.y_test) ** 2)), rel=1e-4)


def test_logits_classifier_predicts_probabilities_and_eval_agrees(tmp_path):
    spec = {
        "data": {"source": "synthetic", "generator": "blobs", "classes": 3, "n_samples": 300},
        "model": {
            "input_shape": [2],
            "layers": [{"type": "dense", "units": 16, "activation": "relu"}, {"type": "dense", "units": 3}],
        },
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "metrics": ["accuracy"],
        "training": {"epochs": 5},
    }
    out = tmp_path / "run"
    assert run("train", write(tmp_path / "c.yaml", spec), "--out", out, "--quiet").exit_code == 0
    config, model, loss, prep = load_run(out)
    d = prepare_data(config, model, loss, prep)
    x = np.random.default_rng(1).normal(size=(10, 2)) * 4
    np.save(tmp_path / "x.npy", x)
    rows = list(csv.reader(run("predict", out, tmp_path / "x.npy").output.splitlines()))
    assert rows[0] == ["class", "p_0", "p_1", "p_2"]
    probs = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    logits = model.predict(prep.inputs.transform(x, model.dtype)).astype(np.float64)
    np.testing.assert_allclose(probs, softmax(logits), rtol=1e-5)
    assert [int(row[0]) for row in rows[1:]] == list(logits.argmax(1))
    report = json.loads(run("eval", out, "--json").output)
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == len(d.x_test) and np.trace(cm) / cm.sum() == pytest.approx(report["accuracy"])


def test_batch_mode_takes_one_step_of_the_whole_training_set_per_epoch(tmp_path):
    spec = REGRESSION | {"training": {"epochs": 4, "batching": "batch", "batch_size": 7}}
    cfg = load(write(tmp_path / "b.yaml", spec))
    r = TrainingRun.create(cfg, out=tmp_path / "run")
    n = len(r.data.x_train)
    assert r.trainer.batch_size == n  # batch_size is ignored in batch mode
    starts = []

    class Probe(Callback):
        def on_gradients(self, trainer, x, y, loss):
            starts.append((len(x), loss.data))

    r.callbacks.insert(0, Probe())
    result = r.train()
    assert r.trainer.step == 4 and [size for size, _ in starts] == [n] * 4
    # the epoch's loss is the loss of its one step, taken before the update
    assert [row["data_loss"] for row in result.history] == pytest.approx([loss for _, loss in starts], rel=1e-6)


def test_a_learning_rate_schedule_continues_across_a_resume(tmp_path):
    lr = {"name": "exponential_decay", "initial_learning_rate": 0.05, "decay_steps": 10, "decay_rate": 0.5}
    spec = REGRESSION | {"optimizer": {"name": "sgd", "learning_rate": lr}, "training": {"epochs": 4, "batch_size": 32}}
    path = write(tmp_path / "s.yaml", spec)
    straight = TrainingRun.create(load(path), out=tmp_path / "a")
    straight.train()

    resumed, _ = stopped_and_resumed(load(path), tmp_path / "b", 23)
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    rates = [row["learning_rate"] for row in resumed.history]
    assert rates == [row["learning_rate"] for row in straight.history] and rates[0] > rates[-1]


def test_restore_best_weights_then_resume_for_more_epochs_matches_a_straight_run(tmp_path):
    # review defect: the final checkpoint held the best epoch's weights with the last epoch's optimizer moments
    spec = REGRESSION | {
        "training": {
            "epochs": 6,
            "batch_size": 32,
            "validation_split": 0.2,
            "callbacks": {"early_stopping": {"patience": 100, "restore_best_weights": True}},
        },
        "optimizer": {"name": "adam", "learning_rate": 0.05},
    }
    path = write(tmp_path / "e.yaml", spec)
    assert run("train", path, "--out", tmp_path / "short", "--epochs", "6", "--quiet").exit_code == 0
    rows = list(csv.DictReader((tmp_path / "short" / "history.csv").open()))
    losses = [float(row["val_loss"]) for row in rows]
    assert losses.index(min(losses)) != len(losses) - 1, "the test needs a best epoch before the last"
    assert run("train", "--resume", tmp_path / "short", "--epochs", "10", "--quiet").exit_code == 0
    assert run("train", path, "--out", tmp_path / "long", "--epochs", "10", "--quiet").exit_code == 0
    with np.load(tmp_path / "short" / "model.npz") as a, np.load(tmp_path / "long" / "model.npz") as b:
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with np.load(tmp_path / "short" / "checkpoint.npz") as a, np.load(tmp_path / "long" / "checkpoint.npz") as b:
        for k in a.files:
            if k.startswith("weights.") or k.startswith("optimizer."):
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_config_is_checked_without_building_a_model_and_never_changed_in_place(tmp_path, monkeypatch):
    from dnncli.nn import model as model_mod

    built = []
    original = model_mod.Sequential._build
    monkeypatch.setattr(model_mod.Sequential, "_build", lambda self: (built.append(1), original(self)))
    path = write(tmp_path / "r.yaml", REGRESSION)
    cfg = load(path)
    assert built == []  # validated and resolved with no weight allocated or initialized
    before = json.dumps(cfg.resolved, sort_keys=True)
    TrainingRun.create(cfg, out=tmp_path / "run", epochs=2)
    assert len(built) == 1  # built once for the run
    assert json.dumps(cfg.resolved, sort_keys=True) == before  # --epochs went into the run's own copy
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["training"]["epochs"] == 2
    from dnncli.experiment.inspection import gradcheck_config

    gradcheck_config(cfg, samples=2, entries=2)
    assert cfg["dtype"] == "float32"  # the float64 check ran on a copy


def test_the_python_api_trains_evaluates_and_predicts(tmp_path):
    from dnncli.experiment import api

    result = api.train(write(tmp_path / "r.yaml", REGRESSION), ["training.epochs=3"], out=tmp_path / "run")
    assert result.status == "completed" and len(result.history) == 3
    report = api.evaluate(tmp_path / "run")
    assert report["loss"] == pytest.approx(result.test["loss"], rel=1e-6)
    x = np.random.default_rng(0).uniform(-2, 2, size=(5, 3))
    np.save(tmp_path / "x.npy", x)
    rows = list(csv.reader(run("predict", tmp_path / "run", tmp_path / "x.npy").output.splitlines()))[1:]
    np.testing.assert_allclose(api.predict(tmp_path / "run", x)[:, 0], [float(r[0]) for r in rows], rtol=1e-6)
