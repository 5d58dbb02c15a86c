"""What a Keras user reaches for: each was an error, a silence or a surprise, and is now Keras's meaning or one line."""

import csv
import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli import data
from dnncli.cli.app import app
from dnncli.experiment.config import load
from dnncli.experiment.evaluate import load_run
from dnncli.experiment.run import TrainingRun
from dnncli.experiment.weights import read_weights
from dnncli.nn import regularizers
from dnncli.train.scoring import evaluate_arrays
from tests.conftest import stopped_and_resumed

BASE = {
    "name": "k",
    "seed": 1,
    "data": {"source": "synthetic", "generator": "moons", "n_samples": 200, "scale": "standardize"},
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 3},
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write(path, spec):
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def line_of(path, text) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def config(tmp_path, name="c.yaml", **changes):
    """BASE with top-level sections replaced (``training=...``) or merged (``data_``, ``training_``)."""
    spec = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if key.endswith("_"):
            spec[key[:-1]] = spec[key[:-1]] | value
        else:
            spec[key] = value
    return write(tmp_path / name, spec)


def one_error_line(r, where, text):
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"error: {where}"), r.stderr
    assert text in r.stderr, r.stderr


def warnings_of(r) -> list[str]:
    return [line for line in r.stderr.splitlines() if line.startswith("warning: ")]


def dense(units, activation=None, **more):
    return {"type": "dense", "units": units, "activation": activation, **more}


# 1. regularizers written by their factors -------------------------------------------------------------------------
def test_regularizer_written_by_its_factors_as_keras_resolves_to_its_name(tmp_path):
    layers = [
        dense(8, "relu", kernel_regularizer={"l2": 0.01}, bias_regularizer={"l1": 0.01, "l2": 0.02}),
        dense(2, "softmax", kernel_regularizer={"l1": 0.03}, bias_regularizer={"name": "l2", "l2": 0.5}),
    ]
    r = run("validate", config(tmp_path, model={"input_shape": [2], "layers": layers}))
    assert r.exit_code == 0, r.output
    resolved = yaml.safe_load(r.stdout)["model"]["layers"]
    assert resolved[0]["kernel_regularizer"] == {"name": "l2", "l2": 0.01}
    assert resolved[0]["bias_regularizer"] == {"name": "l1_l2", "l1": 0.01, "l2": 0.02}
    assert resolved[1]["kernel_regularizer"] == {"name": "l1", "l1": 0.03}
    assert resolved[1]["bias_regularizer"] == {"name": "l2", "l2": 0.5}  # the named spelling, as before


def test_regularizer_factors_have_keras_penalties():
    w = np.array([[0.5, -2.0], [1.5, 0.0]])
    # keras.regularizers.L2(0.01)(w) = 0.01 * sum(w**2): no 1/2
    assert regularizers.get({"l2": 0.01}).penalty(w) == pytest.approx(0.01 * 6.5)
    assert regularizers.get({"l1": 0.01}).penalty(w) == pytest.approx(0.01 * 4.0)
    assert regularizers.get({"l1": 0.01, "l2": 0.03}).penalty(w) == pytest.approx(0.01 * 4.0 + 0.03 * 6.5)


# 2. images under a flat input_shape -------------------------------------------------------------------------------
@pytest.mark.parametrize("flatten", [False, True])
def test_images_under_a_flat_input_shape_name_the_line_and_the_fix(tmp_path, flatten):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "img.npz", x=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, 30))
    layers = [{"type": "flatten"}] * flatten + [dense(16, "relu"), dense(10, "softmax")]
    cfg = config(
        tmp_path,
        data={"source": "npz", "path": str(tmp_path / "img.npz"), "scale": 255},
        model={"input_shape": [784], "layers": layers},
    )
    r = run("train", cfg, "--out", tmp_path / "run")
    fix = "use input_shape: [28, 28] with a {type: flatten} first layer."
    if flatten:
        fix = "use input_shape: [28, 28] (the flatten layer then gives the next layer its 784 features)."
    where = f"{cfg}:{line_of(cfg, 'input_shape')}: model.input_shape: "
    one_error_line(r, where, f"has samples of shape [28, 28], but the model's input_shape is [784]; {fix}")
    assert not (tmp_path / "run").exists()


# 3. metrics as Keras names them --------------------------------------------------------------------------------------
def test_metrics_written_as_keras_classes_train_and_log_under_their_names(tmp_path):
    cfg = config(
        tmp_path,
        model={"input_shape": [2], "layers": [dense(8, "relu"), dense(1, "sigmoid")]},
        loss="binary_crossentropy",
        metrics=["AUC", "F1Score", "acc"],
        training_={"validation_split": 0.25},
    )
    r = run("validate", cfg)
    assert r.exit_code == 0 and yaml.safe_load(r.stdout)["metrics"] == ["auc", "f1_score", "acc"]
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    with open(tmp_path / "run" / "history.csv") as f:
        row = next(csv.DictReader(f))
    assert {"auc", "f1_score", "acc", "val_auc", "val_f1_score"} <= set(row) and 0 <= float(row["val_auc"]) <= 1


def test_an_unknown_metric_is_one_line_suggesting_by_meaning(tmp_path):
    cfg = config(tmp_path, metrics=["accuracy", "roc"])
    r = run("validate", cfg)
    one_error_line(r, f"{cfg}:{line_of(cfg, '- roc')}: metrics.1: ", "unknown metric 'roc'. Did you mean 'auc'?")


# 4. the loss against the output layer ----------------------------------------------------------------------------
def test_binary_crossentropy_on_a_two_unit_softmax_is_refused_on_the_loss_line(tmp_path):
    cfg = config(tmp_path, loss="binary_crossentropy")
    r = run("validate", cfg)
    one_error_line(
        r,
        f"{cfg}:{line_of(cfg, 'loss:')}: loss: ",
        "binary_crossentropy scores each of the 2 softmax outputs as an independent 0/1 label, but softmax makes"
        " them compete; use sparse_categorical_crossentropy with the 2-unit softmax (integer labels), or one sigmoid"
        " unit (units: 1, activation: sigmoid) with binary_crossentropy.",
    )


def test_from_logits_on_a_softmax_output_warns_once_on_stderr_and_json_stays_clean(tmp_path):
    cfg = config(tmp_path, loss={"name": "sparse_categorical_crossentropy", "from_logits": True})
    expected = (
        f"warning: {cfg}:{line_of(cfg, 'from_logits')}: loss.from_logits: sparse_categorical_crossentropy received"
        " from_logits: true, but the output layer applies softmax, so its outputs are probabilities, not logits;"
        " set from_logits: false, or remove the output activation."
    )
    for _ in range(2):  # each command says it, also the second in one process
        r = run("inspect-gradients", cfg, "--steps", "2", "--json")
        assert r.exit_code == 0, r.output
        json.loads(r.stdout)
        assert warnings_of(r) == [expected]
    r = run("train", cfg, "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0 and warnings_of(r) == [expected]
    r = run("eval", tmp_path / "run", "--json")  # the run's own config.yaml: said when the run started
    assert r.exit_code == 0 and r.stderr == "" and json.loads(r.stdout)["samples"] == 40


def test_cross_entropy_on_a_linear_output_warns_and_a_matching_pair_does_not(tmp_path):
    linear = config(tmp_path, model={"input_shape": [2], "layers": [dense(8, "relu"), dense(2)]})
    r = run("validate", linear)
    assert r.exit_code == 0 and warnings_of(r) == [
        f"warning: {linear}:{line_of(linear, 'loss:')}: loss: sparse_categorical_crossentropy expects probabilities"
        " (from_logits: false), but the output layer has no activation, so its outputs are logits; set loss:"
        " {name: sparse_categorical_crossentropy, from_logits: true}, or give the output layer activation: softmax."
    ]
    logits = config(
        tmp_path,
        "l.yaml",
        model={"input_shape": [2], "layers": [dense(8, "relu"), dense(2)]},
        loss={"name": "sparse_categorical_crossentropy", "from_logits": True},
    )
    for cfg in (logits, config(tmp_path, "ok.yaml")):
        r = run("validate", cfg)
        assert r.exit_code == 0 and r.stderr == ""


# 5. batch_size beside batch and stochastic ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "batching,size,every",
    [("batch", 64, "all the training samples"), ("stochastic", 16, "one sample")],
)
def test_batch_size_beside_batch_or_stochastic_is_warned_and_validate_says_what_happens(
    tmp_path, batching, size, every
):
    cfg = config(tmp_path, training={"epochs": 2, "batching": batching, "batch_size": size})
    r = run("validate", cfg)
    assert r.exit_code == 0
    assert warnings_of(r) == [
        f"warning: {cfg}:{line_of(cfg, 'batch_size')}: training.batch_size: {size} is ignored with batching:"
        f" {batching} (every update uses {every}); remove it, or use batching: mini-batch."
    ]
    what = "the whole training split" if batching == "batch" else "one sample"
    assert f"  batch_size: {size}  # ignored: batching: {batching} updates on {what}\n" in r.stdout
    assert yaml.safe_load(r.stdout)["training"]["batch_size"] == size  # the comment is no part of the value


def test_batch_modes_without_a_batch_size_say_nothing(tmp_path):
    for i, training in enumerate([{"batching": "batch"}, {"batching": "stochastic", "batch_size": 1}]):
        r = run("validate", config(tmp_path, f"{i}.yaml", training=training))
        assert r.exit_code == 0 and r.stderr == ""


# 6. test_split: 0 ------------------------------------------------------------------------------------------------------
def test_test_split_zero_trains_on_every_sample_and_eval_asks_for_data(tmp_path):
    cfg = config(tmp_path, data_={"test_split": 0})
    r = run("train", cfg, "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    assert f"Test: no test set (data.test_split: 0); evaluate with: dnn eval {tmp_path / 'run'} --data FILE" in r.stdout
    assert "Model:" in r.stdout
    config_ = load_run(tmp_path / "run")[0]
    probe = TrainingRun.create(load(cfg), out=tmp_path / "probe")
    assert len(probe.data.x_train) == 200 and len(probe.data.x_test) == 0  # as model.fit(x, y)
    r = run("eval", tmp_path / "run")
    one_error_line(r, f"{tmp_path / 'run'}: ", "the run has no test split (data.test_split: 0); pass --data FILE")
    x, y = data.build_source(config_["data"]).arrays(np.random.default_rng(0))
    np.savez(tmp_path / "all.npz", x=x, y=y)
    r = run("eval", tmp_path / "run", "--data", tmp_path / "all.npz", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["samples"] == 200


def test_test_split_zero_keeps_every_row_of_a_csv_and_still_takes_a_validation_split(tmp_path):
    rows = "\n".join(f"{i},{i % 3},{'ab'[i % 2]}" for i in range(20))
    (tmp_path / "t.csv").write_text("u,v,label\n" + rows + "\n")
    spec = data.resolve_spec({"source": "csv", "path": str(tmp_path / "t.csv"), "target": "label", "test_split": 0})
    ds = data.build_source(spec).load(0, validation_split=0.25)
    assert len(ds.x_test) == 0 and len(ds.x_train) + len(ds.x_val) == 20 and 4 <= len(ds.x_val) <= 5


# 7. class_names --------------------------------------------------------------------------------------------------------
def _table(tmp_path, labels, name="t.csv"):
    rng = np.random.default_rng(1)
    lines = [f"{a:.3f},{b:.3f},{y}" for (a, b), y in zip(rng.normal(size=(len(labels), 2)), labels)]
    (tmp_path / name).write_text("u,v,y\n" + "\n".join(lines) + "\n")
    return str(tmp_path / name)


def test_class_names_with_a_regression_loss_is_refused_on_its_line(tmp_path):
    path = _table(tmp_path, np.linspace(0, 1, 30).round(3))
    cfg = config(
        tmp_path,
        data={"source": "csv", "path": path, "target": "y", "class_names": ["low", "high"]},
        model={"input_shape": [2], "layers": [dense(4, "relu"), dense(1)]},
        loss="mse",
    )
    one_error_line(
        run("validate", cfg),
        f"{cfg}:{line_of(cfg, 'class_names:')}: data.class_names: ",
        "class_names applies to classification targets only, and loss 'mean_squared_error' regresses values",
    )


def test_class_names_name_integer_labels_in_predict_and_eval(tmp_path):
    names = ["setosa", "versicolor", "virginica"]
    path = _table(tmp_path, [i % 3 for i in range(60)])
    model = {"input_shape": [2], "layers": [dense(8, "relu"), dense(3, "softmax")]}
    cfg = config(tmp_path, data={"source": "csv", "path": path, "target": "y", "class_names": names}, model=model)
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    report = json.loads(run("eval", tmp_path / "run", "--json").stdout)
    assert [row["name"] for row in report["per_class"]] == names
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    r = run("predict", tmp_path / "run", tmp_path / "x.npy")
    header, first = r.stdout.splitlines()[:2]
    assert header.startswith("class,label,") and first.split(",")[1] in names
    bad = config(tmp_path, "bad.yaml", data={"source": "csv", "path": path, "target": "y", "class_names": names[:2]})
    r = run("train", bad, "--out", tmp_path / "bad")  # BASE's model: 2 units, 2 names, and labels 0..2
    one_error_line(r, f"{path}:", "target 'y': label 2 has no class name; class_names names 2 classes, labels 0..1.")
    few = config(tmp_path, "few.yaml", data={"source": "csv", "path": path, "target": "y", "class_names": names[:2]})
    few.write_text(few.read_text().replace("units: 2", "units: 3"))
    one_error_line(
        run("validate", few),
        f"{few}:{line_of(few, 'class_names:')}: data.class_names: ",
        "class_names lists 2 classes, but the output layer's 3 unit(s) stand for 3.",
    )


# 8. class_weight -------------------------------------------------------------------------------------------------------
def _imbalanced(tmp_path):
    rng = np.random.default_rng(2)
    y = np.array([0] * 150 + [1] * 50)
    x = rng.normal(size=(200, 2)) + y[:, None]
    np.savez(tmp_path / "imb.npz", x=x, y=y)
    return {"source": "npz", "path": str(tmp_path / "imb.npz"), "scale": "standardize"}


def test_class_weight_balanced_is_scikit_learns_on_the_training_split(tmp_path):
    utils = pytest.importorskip("sklearn.utils")
    cfg = config(tmp_path, data=_imbalanced(tmp_path), training_={"class_weight": "balanced", "validation_split": 0.2})
    r = TrainingRun.create(load(cfg), out=tmp_path / "run")
    y = r.data.y_train
    weights = utils.compute_class_weight("balanced", classes=np.unique(y), y=y)
    np.testing.assert_allclose(r.data.sample_weight, weights[y], rtol=1e-12)
    assert r.trainer.sample_weight is r.data.sample_weight


def test_class_weight_weighs_the_training_loss_as_keras_and_not_validation(tmp_path):
    spec = {"class_weight": {0: 1.0, 1: 5.0}, "validation_split": 0.2, "batching": "batch", "epochs": 1}
    cfg = config(tmp_path, data=_imbalanced(tmp_path), training=spec)
    r = TrainingRun.create(load(cfg), out=tmp_path / "run")
    d = r.data
    np.testing.assert_array_equal(d.sample_weight, np.where(d.y_train == 1, 5.0, 1.0))
    # the one batch's loss, before its update: sum(w_i * l_i) / N from the initial weights
    initial = load(cfg).build_model()
    p = initial.predict(d.x_train)
    each = -np.log(p[np.arange(len(p)), d.y_train].astype(np.float64))
    assert r.train().history[0]["data_loss"] == pytest.approx(np.dot(d.sample_weight, each) / len(p), rel=1e-5)
    val = evaluate_arrays(r.model, r.loss, [], d.x_val, d.y_val)["loss"]
    assert r.history[0]["val_loss"] == pytest.approx(val, rel=1e-6)  # unweighted, as Keras's validation


def test_class_weight_by_class_name(tmp_path):
    path = _table(tmp_path, ["no", "no", "no", "yes"] * 10)
    cfg = config(
        tmp_path,
        data={"source": "csv", "path": path, "target": "y"},
        training_={"class_weight": {"yes": 3.0}},
    )
    r = TrainingRun.create(load(cfg), out=tmp_path / "run")
    np.testing.assert_array_equal(r.data.sample_weight, np.where(r.data.y_train == 1, 3.0, 1.0))
    typo = config(tmp_path, "typo.yaml", data={"source": "csv", "path": path, "target": "y"})
    typo.write_text(typo.read_text() + "  class_weight: {yess: 3.0}\n")
    r = run("train", typo, "--out", tmp_path / "typo")
    where = f"{typo}:{line_of(typo, 'yess')}: training.class_weight.yess: "
    one_error_line(r, where, "'yess' is not a class name. Did you mean 'yes'? Classes: ['no', 'yes'].")


@pytest.mark.parametrize(
    "changes,key,text",
    [
        (
            {"model": {"input_shape": [2], "layers": [dense(1)]}, "loss": "mse", "data_": {"generator": "regression"}},
            "training.class_weight",
            "class_weight weighs the samples of each class, and loss 'mean_squared_error' regresses values",
        ),
        ({}, "training.class_weight.2", "class 2 is not one of the model's 2 classes (0..1)."),
    ],
)
def test_class_weight_refusals(tmp_path, changes, key, text):
    weights = {0: 1.0, 2: 2.0} if "loss" not in changes else "balanced"
    cfg = config(tmp_path, **changes, training_={"class_weight": weights})
    line = line_of(cfg, "2: 2.0") if key.endswith(".2") else line_of(cfg, "class_weight")
    one_error_line(run("validate", cfg), f"{cfg}:{line}: {key}: ", text)


# 9. validation files ---------------------------------------------------------------------------------------------------
def test_validation_path_is_scaled_with_the_training_split(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.normal(3.0, 2.0, (120, 2)), rng.integers(0, 2, 120)
    xv, yv = rng.normal(3.0, 2.0, (30, 2)), rng.integers(0, 2, 30)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.savez(tmp_path / "val.npz", x=xv, y=yv)
    source = {"source": "npz", "path": str(tmp_path / "train.npz"), "validation_path": str(tmp_path / "val.npz")}
    cfg = config(tmp_path, data=source | {"scale": "standardize", "test_split": 0})
    r = TrainingRun.create(load(cfg), out=tmp_path / "run")
    np.testing.assert_allclose(r.data.x_val, (xv - x.mean(axis=0)) / x.std(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(r.data.y_val, yv)
    assert len(r.data.x_train) == 120
    assert "val_loss" in r.train().history[-1]
    both = config(tmp_path, "both.yaml", data=source, training_={"validation_split": 0.2})
    one_error_line(
        run("validate", both),
        f"{both}:{line_of(both, 'validation_path:')}: data.validation_path: ",
        "data.validation_path and training.validation_split both choose the validation set; give one."
        " Received: validation_split=0.2",
    )


def test_validation_files_of_csv_and_npy(tmp_path):
    train = _table(tmp_path, ["b", "a"] * 10)
    val = _table(tmp_path, ["a", "a", "b"], "v.csv")
    spec = data.resolve_spec({"source": "csv", "path": train, "target": "y", "validation_path": val})
    ds = data.build_source(spec).load(0)
    assert ds.class_names == ["a", "b"] and ds.y_val.tolist() == [0, 0, 1] and ds.x_val.shape == (3, 2)
    rng = np.random.default_rng(4)
    for name, array in {"x": rng.normal(size=(20, 3)), "y": rng.normal(size=20), "vx": np.ones((4, 3))}.items():
        np.save(tmp_path / f"{name}.npy", array)
    np.save(tmp_path / "vy.npy", np.zeros(4))
    paths = {k: str(tmp_path / f"{v}.npy") for k, v in [("x_path", "x"), ("y_path", "y"), ("validation_x_path", "vx")]}
    with pytest.raises(data.sources.DnnError, match=r"validation_x_path and data\.validation_y_path go together"):
        data.resolve_spec({"source": "npy", **paths})
    spec = data.resolve_spec({"source": "npy", **paths, "validation_y_path": str(tmp_path / "vy.npy")})
    ds = data.build_source(spec).load(0, regression=True)
    assert ds.x_val.shape == (4, 3) and ds.y_val.dtype == np.float64 and len(ds.x_train) == 16


# 10. model_checkpoint --------------------------------------------------------------------------------------------------
CHECKPOINTED = {
    "epochs": 6,
    "batch_size": 16,
    "validation_split": 0.25,
    "callbacks": {"model_checkpoint": {"monitor": "val_loss", "save_best_only": True}},
}


def test_model_checkpoint_writes_the_best_epochs_weights_to_best_npz(tmp_path):
    cfg = config(tmp_path, training=CHECKPOINTED, optimizer={"name": "sgd", "learning_rate": 0.5, "momentum": 0.9})
    r = TrainingRun.create(load(cfg), out=tmp_path / "run")
    history = r.train().history
    best = int(np.argmin([row["val_loss"] for row in history]))
    assert best < len(history) - 1, "the test needs a best epoch before the last"
    model = load(cfg).build_model()
    model.set_weights_dict(read_weights(tmp_path / "run" / "best.npz"))
    val = evaluate_arrays(model, r.loss, [], r.data.x_val, r.data.y_val)["loss"]
    assert val == pytest.approx(history[best]["val_loss"], rel=1e-6)
    cb = next(cb for cb in r.user_callbacks if cb.name == "model_checkpoint")
    assert cb.best_epoch == best


def test_model_checkpoint_without_save_best_only_writes_every_epoch(tmp_path):
    training = CHECKPOINTED | {"epochs": 2, "callbacks": {"model_checkpoint": True}}
    cfg = config(tmp_path, training=training)
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    best, last = read_weights(tmp_path / "run" / "best.npz"), read_weights(tmp_path / "run" / "model.npz")
    assert best.keys() == last.keys() and all(np.array_equal(best[k], last[k]) for k in best)
    r = run("validate", cfg)
    assert yaml.safe_load(r.stdout)["training"]["callbacks"]["model_checkpoint"] == {
        "monitor": "val_loss",
        "save_best_only": False,
        "mode": "auto",
        "initial_value_threshold": None,
    }


def test_model_checkpoint_resumes_comparing_with_its_best(tmp_path):
    cfg = load(config(tmp_path, training=CHECKPOINTED, optimizer={"name": "sgd", "learning_rate": 0.5}))
    whole = TrainingRun.create(cfg, out=tmp_path / "whole")
    whole.train()
    stopped_and_resumed(cfg, tmp_path / "cut", step=20)
    a, b = read_weights(tmp_path / "whole" / "best.npz"), read_weights(tmp_path / "cut" / "best.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_model_checkpoint_monitor_must_be_logged(tmp_path):
    training = {"callbacks": {"model_checkpoint": {"monitor": "val_auc", "save_best_only": True}}}
    r = run("train", config(tmp_path, training=training), "--out", tmp_path / "run")
    assert r.exit_code == 2 and "training.callbacks.model_checkpoint.monitor: 'val_auc' is not logged" in r.stderr


def test_a_callback_may_monitor_the_data_loss_and_the_penalty(tmp_path):
    """Every epoch logs data_loss and penalty (a sweep's metric could name them; a callback's monitor was refused)."""
    callbacks = {
        "early_stopping": {"monitor": "data_loss", "patience": 1},
        "reduce_lr_on_plateau": {"monitor": "penalty"},
    }
    r = run("train", config(tmp_path, training={"epochs": 2, "callbacks": callbacks}), "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output


def test_the_columns_a_config_logs_are_in_its_runs_history(tmp_path):
    for validation_split in (0.0, 0.25):
        cfg = load(config(tmp_path, metrics=["accuracy"], training={"epochs": 1, "validation_split": validation_split}))
        row = TrainingRun.create(cfg, out=tmp_path / f"run{validation_split}").train().history[0]
        logged = cfg.logged_columns()
        assert set(logged) <= set(row)
        assert [k for k in row if k.startswith("val_")] == [k for k in logged if k.startswith("val_")]


def test_a_runs_callbacks_are_built_with_their_files_and_hold_no_run(tmp_path):
    """The run knows its directory when its callbacks are built: none is patched afterwards, none holds the run."""
    training = CHECKPOINTED | {"epochs": 1, "tensorboard": True}
    r = TrainingRun.create(load(config(tmp_path, training=training)), out=tmp_path / "run")
    for cb in r.callbacks:
        assert not any(value is r for value in vars(cb).values()), cb
    checkpoint = next(cb for cb in r.user_callbacks if cb.name == "model_checkpoint")
    assert checkpoint.path == tmp_path / "run" / "best.npz" and "save" not in vars(checkpoint)
    assert r.tensorboard.root == tmp_path / "run" / "tensorboard"
    r.train()
    assert (tmp_path / "run" / "best.npz").exists() and (tmp_path / "run" / "tensorboard" / "train").is_dir()


# found in review ---------------------------------------------------------------------------------------------------
def test_a_run_with_integer_class_weight_keys_resumes(tmp_path):
    """The checkpoint keeps its config as JSON, whose keys are strings: that is no edit of config.yaml."""
    cfg = config(tmp_path, training_={"class_weight": {0: 1.0, 1: 2.0}, "epochs": 2})
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    r = run("train", "--resume", tmp_path / "run", "--epochs", 3, "--quiet")
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 4


def test_a_bad_validation_file_is_named_in_its_error(tmp_path):
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(60, 2)), y=rng.integers(0, 2, 60))
    np.savez(tmp_path / "val.npz", x=rng.normal(size=(10, 3)), y=rng.integers(0, 2, 10))
    source = {"source": "npz", "path": str(tmp_path / "train.npz"), "validation_path": str(tmp_path / "val.npz")}
    r = run("train", config(tmp_path, data=source), "--out", tmp_path / "run")
    assert r.exit_code == 2
    assert f"data ({tmp_path / 'val.npz'})" in r.output and "train.npz" not in r.output


def test_model_checkpoint_saving_every_epoch_needs_no_logged_monitor(tmp_path):
    """As Keras's ModelCheckpoint(save_best_only=False): val_loss is never read, so no validation set is needed."""
    training = {"epochs": 2, "callbacks": {"model_checkpoint": {}}}
    r = run("train", config(tmp_path, training=training), "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "best.npz").exists()
