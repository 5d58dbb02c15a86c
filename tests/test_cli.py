"""The dnn command, through typer's CliRunner and as a subprocess."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.diagnostics.settings import STEP_FIELDS
from tests.conftest import stopped_and_resumed

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
ESC = re.compile(r"\x1b\[")

SMALL = {
    "name": "small",
    "seed": 3,
    "data": {"source": "synthetic", "generator": "spirals", "n_samples": 600, "noise": 0.05, "scale": "standardize"},
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 32, "activation": "relu", "kernel_initializer": "he_normal"},
            {"type": "dropout", "rate": 0.1},
            {"type": "batch_normalization"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 3, "batch_size": 16, "validation_split": 0.2},
}


# plain SGD with a step far too large: the loss overflows within the first epoch
DIVERGE = {
    "name": "diverge",
    "data": {"source": "synthetic", "generator": "regression", "n_samples": 400},
    "model": {
        "input_shape": [2],
        "layers": [{"type": "dense", "units": 16, "activation": "relu"}, {"type": "dense", "units": 1}],
    },
    "loss": "mse",
    "optimizer": {"name": "sgd", "learning_rate": 50.0},
    "training": {"epochs": 5, "batch_size": 8},
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write(path, mapping):
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def dnn(*args, **kw):
    """dnn as a subprocess (stdout is a pipe, not a terminal)."""
    return subprocess.run([sys.executable, "-m", "dnncli", *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture
def cfg(tmp_path):
    return write(tmp_path / "small.yaml", SMALL)


# validate and config errors ---------------------------------------------------------------
def test_validate_prints_a_resolved_config_that_is_itself_valid(tmp_path, cfg):
    r = run("validate", cfg)
    assert r.exit_code == 0, r.output
    resolved = yaml.safe_load(r.output)
    assert resolved["optimizer"]["beta_2"] == 0.999 and resolved["optimizer"]["epsilon"] == 1e-7
    assert resolved["training"]["batching"] == "mini-batch"
    assert resolved["model"]["layers"][0]["bias_initializer"] == {"name": "zeros"}
    assert resolved["model"]["layers"][2]["momentum"] == 0.99 and resolved["model"]["layers"][2]["epsilon"] == 1e-3
    again = run("validate", write(tmp_path / "resolved.yaml", resolved))
    assert again.exit_code == 0 and again.output == r.output


def test_set_overrides_values_and_list_items(cfg):
    r = run(
        "validate",
        cfg,
        "--set",
        "optimizer.learning_rate=0.5",
        "--set",
        "model.layers.0.units=7",
        "--set",
        "training.callbacks={early_stopping: {patience: 2}}",
    )
    assert r.exit_code == 0, r.output
    resolved = yaml.safe_load(r.output)
    assert resolved["optimizer"]["learning_rate"] == 0.5
    assert resolved["model"]["layers"][0]["units"] == 7
    assert resolved["training"]["callbacks"]["early_stopping"]["patience"] == 2
    assert resolved["training"]["callbacks"]["early_stopping"]["monitor"] == "val_loss"


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "optimizer:\n  name: adam\n  learning_rte: 0.01\n",
            r":3: optimizer.learning_rte: .*Did you mean 'learning_rate'\?",
        ),
        ("training:\n  epochs: 0\n", r":2: training.epochs: training.epochs must be a positive integer. Received: 0"),
        (
            "training:\n  batching: minibatch\n",
            r":2: training.batching: .*Received: 'minibatch'.*Did you mean 'mini-batch'",
        ),
        ("modle: {}\n", r":1: modle: unknown key 'modle'. Did you mean 'model'\?"),
        (
            "loss: binary_crossentropyy\n",
            r":1: loss.name: Unknown loss 'binary_crossentropyy'. Did you mean 'binary_crossentropy'",
        ),
        ("optimizer: {name: sgd, momentum: 2}\n", r":1: optimizer.momentum: sgd.momentum must be .*Received: 2"),
    ],
)
def test_config_errors_name_file_line_and_key(tmp_path, text, message):
    base = {k: v for k, v in SMALL.items() if k not in ("optimizer", "training", "loss")}
    body = yaml.safe_dump(base, sort_keys=False)
    if "loss" not in text:
        body += "loss: sparse_categorical_crossentropy\n"
    path = tmp_path / "bad.yaml"
    path.write_text(text + body)
    r = run("train", path)
    assert r.exit_code == 2
    assert re.search(re.escape(str(path)) + message, r.output), r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_layer_error_points_at_the_layer_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "model:\n  input_shape: [2]\n  layers:\n    - {type: dense, units: 4}\n    - {type: dense, units: -1}\nloss: mse\n"
    )
    r = run("validate", path)
    assert r.exit_code == 2
    assert f"{path}:5: model.layers.1.units: dense.units must be a positive integer. Received: -1" in r.output


def test_set_errors_and_yaml_errors(tmp_path, cfg):
    r = run("validate", cfg, "--set", "model.layers.9.units=3")
    assert r.exit_code == 2 and "not an index of a list of 4" in r.output
    r = run("validate", cfg, "--set", "optimizer.learning_rate=-1")
    assert r.exit_code == 2 and "--set optimizer.learning_rate" in r.output and "Received: -1" in r.output
    bad = tmp_path / "broken.yaml"
    bad.write_text("model: [unclosed\n")
    r = run("validate", bad)
    assert r.exit_code == 2 and "not valid YAML" in r.output
    r = run("validate", tmp_path / "missing.yaml")
    assert r.exit_code == 2 and "no such config file" in r.output


def test_debug_shows_the_traceback(tmp_path):
    path = write(tmp_path / "bad.yaml", SMALL | {"loss": "nope"})
    r = dnn("--debug", "validate", path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "DnnError" in r.stderr
    r = dnn("validate", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: ")


def test_help_explains_with_examples():
    r = run("--help")
    assert r.exit_code == 0 and "Example" in r.output
    for command in ("train", "eval", "summary", "validate", "predict"):
        r = run(command, "--help")
        assert r.exit_code == 0 and "Example:" in r.output, command


# train, eval, predict ---------------------------------------------------------------------
def test_train_writes_the_run_directory(tmp_path, cfg):
    out = tmp_path / "run"
    r = run("train", cfg, "--out", out)
    assert r.exit_code == 0, r.output
    for f in ("config.yaml", "history.csv", "gradients.csv", "model.npz", "checkpoint.npz", "preprocessing.npz"):
        assert (out / f).exists(), f
    # no temporary files left behind; .lock stays (unlocked), naming the last run that held the directory
    assert [p.name for p in out.glob(".*")] == [".lock"]
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "time", "grad_norm.dense"} <= set(rows[0])
    grads = list(csv.DictReader((out / "gradients.csv").open()))
    # a small model: every statistic at every step (384 training samples / 16 = 24 steps), for both dense layers
    assert len(grads) == 3 * 24 * 2
    # gradients.csv's header is the monitor's step fields, the update ratio and both unit shares among them
    assert list(grads[0]) == list(STEP_FIELDS)
    assert {"grad_norm", "update_ratio", "dead_fraction", "saturated_fraction"} <= set(grads[0])
    assert grads[1]["layer_index"] == "3"  # the position in the config's layers list
    # the step the optimizer took, |delta W| / |W| (Adam's is not the gradient's ratio; tests/test_update_ratio.py)
    assert 0 < float(grads[0]["update_ratio"]) < 1
    assert yaml.safe_load((out / "config.yaml").read_text())["optimizer"]["epsilon"] == 1e-7
    # the output is plain lines: no escape codes when stdout is not a terminal
    assert not ESC.search(r.output)
    assert "epoch" in r.output and "gradient norms |dW|" in r.output and "Test: loss" in r.output
    assert re.search(r"min \d\.\de-\d\d \(dense(_\d)?\), max \d\.\de[-+]\d\d \(dense", r.output), r.output
    # a directory that holds a run is never overwritten
    again = run("train", cfg, "--out", out)
    assert again.exit_code == 2 and "holds a run already" in again.output


def test_runs_default_to_name_and_timestamp(tmp_path, cfg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("train", cfg, "--quiet").exit_code == 0
    assert run("train", cfg, "--quiet").exit_code == 0
    dirs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(dirs) == 2 and all(re.fullmatch(r"small-\d{8}-\d{6}(-2)?", d) for d in dirs)


def test_quiet_prints_only_the_result(tmp_path, cfg):
    r = run("train", cfg, "--out", tmp_path / "q", "--quiet")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].startswith("No gradient flag raised") and lines[1].startswith("Test: loss"), r.output
    assert "epoch" not in r.output


def test_eval_json_and_tables(tmp_path, cfg):
    out = tmp_path / "run"
    assert run("train", cfg, "--out", out, "--epochs", "5").exit_code == 0
    r = run("eval", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["samples"] == 120 and 0 <= report["accuracy"] <= 1 and report["loss"] > 0
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (2, 2) and cm.sum() == 120
    assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert len(report["per_class"]) == 2 and {"precision", "recall", "f1", "support"} <= set(report["per_class"][0])
    r = run("eval", out)
    assert r.exit_code == 0 and "Confusion matrix" in r.output and "precision" in r.output
    # other data, as NPZ
    x = np.random.default_rng(0).normal(size=(10, 2))
    np.savez(tmp_path / "other.npz", x=x, y=np.arange(10) % 2)
    r = run("eval", out, "--data", tmp_path / "other.npz", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["samples"] == 10
    assert run("eval", tmp_path / "nope").exit_code == 2


def test_predict_csv_and_npy(tmp_path, cfg):
    out = tmp_path / "run"
    assert run("train", cfg, "--out", out).exit_code == 0
    (tmp_path / "in.csv").write_text("x0,x1\n0.1,0.2\n-0.5,0.3\n")
    r = run("predict", out, tmp_path / "in.csv")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0] == "class,p_0,p_1" and len(lines) == 3
    cls, p0, p1 = lines[1].split(",")
    assert int(cls) in (0, 1) and float(p0) + float(p1) == pytest.approx(1.0, abs=1e-6)
    np.save(tmp_path / "in.npy", np.array([[0.1, 0.2], [-0.5, 0.3]]))
    r = run("predict", out, tmp_path / "in.npy", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0 and (tmp_path / "p.csv").read_text().strip().splitlines()[1:] == lines[1:]
    assert run("predict", out, tmp_path / "in.npy", "--out", tmp_path / "p.csv").exit_code == 2  # no overwrite
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    r = run("predict", out, tmp_path / "bad.csv")
    assert r.exit_code == 2 and "bad.csv:2: 'x' is not a number" in r.output
    np.save(tmp_path / "wide.npy", np.zeros((2, 3)))
    r = run("predict", out, tmp_path / "wide.npy")
    assert r.exit_code == 2 and "input_shape is [2]" in r.output


def test_summary_counts_as_keras():
    r = run("summary", ROOT / "configs" / "fashion_mnist.yaml")  # reads no data: $DNN_DATASETS may be unset
    assert r.exit_code == 0, r.output
    assert "Total params: 271,346" in r.output
    assert "Trainable params: 268,978" in r.output and "Non-trainable params: 2,368" in r.output
    assert "235,500" in r.output and "(None, 300)" in r.output


# warm start, early stopping, non-finite losses ---------------------------------------------------
def test_init_weights_warm_start(tmp_path, cfg):
    first = tmp_path / "first"
    assert run("train", cfg, "--out", first, "--epochs", "5").exit_code == 0
    warm = tmp_path / "warm"
    assert run("train", cfg, "--out", warm, "--epochs", "1", "--init-weights", first / "model.npz").exit_code == 0
    cold = tmp_path / "cold"
    assert run("train", cfg, "--out", cold, "--epochs", "1").exit_code == 0

    def first_loss(d):
        return float(next(csv.DictReader((d / "history.csv").open()))["loss"])

    assert first_loss(warm) < first_loss(cold)
    np.savez(tmp_path / "bad.npz", **{"layer0.kernel": np.zeros((2, 32))})
    r = run("train", cfg, "--out", tmp_path / "bad", "--init-weights", tmp_path / "bad.npz")
    assert r.exit_code == 2 and "layer 0 dense: bias (32,) in the config, not in the file" in r.output
    assert not (tmp_path / "bad").exists()  # nothing is created for a run that cannot start


def test_restore_best_weights_writes_the_best_epoch(tmp_path):
    spec = SMALL | {
        "training": SMALL["training"]
        | {
            "epochs": 12,
            "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 3, "restore_best_weights": True}},
        }
    }
    out = tmp_path / "run"
    r = run("train", write(tmp_path / "c.yaml", spec), "--out", out)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((out / "history.csv").open()))
    best = min(float(r["val_loss"]) for r in rows)
    report = json.loads(run("eval", out, "--json").output)
    # evaluate the saved weights on the validation split: recompute by hand through the API
    from dnncli.experiment.evaluate import load_run
    from dnncli.experiment.prepare import prepare_data
    from dnncli.train.scoring import evaluate_arrays

    config, model, loss, pre = load_run(out)
    d = prepare_data(config, model, loss, pre)
    val = evaluate_arrays(model, loss, [], d.x_val, d.y_val)["loss"]
    assert val == pytest.approx(best, rel=1e-5)
    # and dnn eval reports the same weights' loss on the test split
    assert report["loss"] == pytest.approx(evaluate_arrays(model, loss, [], d.x_test, d.y_test)["loss"], rel=1e-6)


def test_monitor_must_be_logged(tmp_path):
    spec = SMALL | {"training": {"epochs": 2, "callbacks": {"early_stopping": {"monitor": "val_loss"}}}}
    r = run("train", write(tmp_path / "c.yaml", spec), "--out", tmp_path / "r")
    assert r.exit_code == 2 and "'val_loss' is not logged" in r.output and "validation_split" in r.output


def test_nonfinite_loss_stops_with_exit_code_3(tmp_path):
    spec = DIVERGE
    out = tmp_path / "run"
    r = run("train", write(tmp_path / "c.yaml", spec), "--out", out)
    assert r.exit_code == 3, r.output
    assert re.search(r"Non-finite values first appeared in .* at epoch \d+, step \d+", r.output), r.output
    with np.load(out / "nonfinite_batch.npz") as nb:
        assert len(nb["indices"]) == 8 and nb["indices"].max() < 320
    assert not (out / "model.npz").exists()


# resume --------------------------------------------------------------------------------
RESUME = SMALL | {
    "data": SMALL["data"] | {"n_samples": 3000},
    "training": {
        "epochs": 12,
        "batch_size": 8,
        "validation_split": 0.2,
        "callbacks": {"reduce_lr_on_plateau": {"patience": 1, "factor": 0.5}},
    },
}


def test_resume_after_ctrl_c_is_bit_identical(tmp_path):
    cfg = write(tmp_path / "resume.yaml", RESUME)
    straight = tmp_path / "straight"
    assert dnn("train", cfg, "--out", straight).returncode == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnncli", "train", str(cfg), "--out", str(cut)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip().startswith("2 "):  # the second epoch's row: interrupt during the third
            proc.send_signal(signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (lines, rest, err)
    assert "Resume with: dnn train --resume" in rest
    assert not (cut / "model.npz").exists() and (cut / "checkpoint.npz").exists()
    r = dnn("train", "--resume", cut)
    assert r.returncode == 0, r.stderr
    with np.load(straight / "model.npz") as a, np.load(cut / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert (straight / "history.csv").read_text().count("\n") == (cut / "history.csv").read_text().count("\n")


def test_resume_in_process_mid_epoch(tmp_path):
    """Stop at a chosen batch, resume, and compare with an uninterrupted run, weights and history."""
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.run import TrainingRun

    cfg_path = write(tmp_path / "resume.yaml", RESUME | {"training": RESUME["training"] | {"epochs": 4}})
    straight = TrainingRun.create(config_mod.load(cfg_path), out=tmp_path / "a")
    assert straight.train().status == "completed"

    resumed, resumed_result = stopped_and_resumed(config_mod.load(cfg_path), tmp_path / "b", 333)
    assert resumed_result.status == "completed"
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    strip = [{k: v for k, v in row.items() if k != "time"} for row in straight.history]
    assert strip == [{k: v for k, v in row.items() if k != "time"} for row in resumed.history]


def test_resume_errors(tmp_path, cfg):
    r = run("train", "--resume", tmp_path / "nothing")
    assert r.exit_code == 2 and "no such run directory" in r.output
    r = run("train", cfg, "--resume", tmp_path)
    assert r.exit_code == 2 and "cannot be combined" in r.output


# shipped configs ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_runs_one_short_epoch(path, tmp_path):
    text = path.read_text()
    if "$DNN_DATASETS" in text and "DNN_DATASETS" not in os.environ:
        pytest.skip("DNN_DATASETS is not set")
    r = run("train", path, "--epochs", "1", "--out", tmp_path / "run", "--quiet")
    if path.stem == "exploding_relu":  # made to diverge: it must stop with the NaN report
        assert r.exit_code == 3 and "Non-finite values first appeared" in r.output, r.output
        return
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "model.npz").exists()


def test_python_dash_m_and_console_script_agree():
    script = Path(sys.executable).parent / "dnn"  # installed by pip install . beside this interpreter
    assert script.exists(), f"no console script {script}: install the package (pip install .)"
    by_module = dnn("--help")
    by_script = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert by_module.returncode == by_script.returncode == 0 and "train" in by_script.stdout
    assert by_module.stdout.replace("python -m dnncli", "dnn") == by_script.stdout
    bad = subprocess.run([str(script), "train", "nope.yaml"], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.yaml: no such config file" in bad.stderr


def test_resume_with_augmentation_mid_epoch_is_bit_identical(tmp_path):
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.run import TrainingRun

    spec = RESUME | {
        "data": RESUME["data"] | {"augment": {"gaussian_noise": 0.1}},
        "training": RESUME["training"] | {"epochs": 2},
    }
    cfg_path = write(tmp_path / "aug.yaml", spec)
    straight = TrainingRun.create(config_mod.load(cfg_path), out=tmp_path / "a")
    straight.train()

    resumed, _ = stopped_and_resumed(config_mod.load(cfg_path), tmp_path / "b", 400)
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_scientific_notation_is_a_number(tmp_path, cfg):
    r = run("validate", cfg, "--set", "optimizer.learning_rate=1e-3")
    assert r.exit_code == 0 and yaml.safe_load(r.output)["optimizer"]["learning_rate"] == 0.001
    text = cfg.read_text().replace("learning_rate: 0.01", "learning_rate: 5e-4")
    (tmp_path / "sci.yaml").write_text(text)
    r = run("validate", tmp_path / "sci.yaml")
    assert r.exit_code == 0 and yaml.safe_load(r.output)["optimizer"]["learning_rate"] == 0.0005
    r = run("validate", cfg, "--set", "optimizer.learning_rate=fast")
    assert r.exit_code == 2 and "must be a number or a schedule mapping" in r.output


def test_finished_runs_are_not_resumed_unless_extended(tmp_path, cfg):
    out = tmp_path / "run"
    assert run("train", cfg, "--out", out, "--quiet").exit_code == 0
    r = run("train", "--resume", out)
    assert r.exit_code == 2 and "finished its 3 epochs" in r.output
    r = run("train", "--resume", out, "--epochs", "5", "--quiet")
    assert r.exit_code == 0, r.output
    assert len((out / "history.csv").read_text().strip().splitlines()) == 1 + 5
    spec = SMALL | {
        "training": SMALL["training"]
        | {"epochs": 30, "callbacks": {"early_stopping": {"monitor": "loss", "min_delta": 10}}}
    }
    es = tmp_path / "es"
    assert run("train", write(tmp_path / "es.yaml", spec), "--out", es, "--quiet").exit_code == 0
    r = run("train", "--resume", es, "--epochs", "40")
    assert r.exit_code == 2 and "stopped early" in r.output


def test_bad_inputs_never_show_a_traceback(tmp_path, cfg):
    out = tmp_path / "run"
    assert run("train", cfg, "--out", out, "--quiet").exit_code == 0
    np.save(tmp_path / "in.npy", np.zeros((2, 2)))
    r = run("predict", out, tmp_path / "in.npy", "--out", tmp_path / "missing_dir" / "p.csv")
    assert r.exit_code == 2 and "does not exist" in r.output
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    r = run("predict", out, tmp_path / "s.npy")
    assert r.exit_code == 2 and "inputs must be numbers" in r.output
    r = run("validate", cfg, "--set", "metrics=[[acc]]")
    assert r.exit_code == 2 and "unknown metric" in r.output
    r = run("validate", cfg, "--set", "model.layers.0.units=" + "9" * 400)
    assert r.exit_code == 2
    (out / "checkpoint.npz").write_bytes(b"garbage")
    r = run("train", "--resume", out, "--epochs", "9")
    assert r.exit_code == 2 and "not a readable checkpoint" in r.output
    (out / "model.npz").write_bytes(b"garbage")
    r = run("eval", out)
    assert r.exit_code == 2 and "not a readable NPZ weights file" in r.output


def test_nonfinite_run_keeps_a_finite_checkpoint_from_epoch_zero(tmp_path):
    spec = DIVERGE
    out = tmp_path / "run"
    assert run("train", write(tmp_path / "c.yaml", spec), "--out", out).exit_code == 3
    with np.load(out / "checkpoint.npz") as ck:
        assert all(np.isfinite(ck[k]).all() for k in ck.files if k.startswith("weights."))
