"""Hostile and unusual configs, weights and options (issue 21): each is exit 2 (or the documented code) and one
line naming the key, file, line or value at fault, no traceback, and never a silently wrong result.

Data files: tests/test_hostile_data.py; run directories and their files: tests/test_hostile_rundir.py.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.errors import DnnError
from dnncli.experiment.config import MAX_NODES, read_config_file

ROOT = Path(__file__).resolve().parents[1]
HUGE = 10**400

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "synthetic", "generator": "blobs", "n_samples": 120, "n_features": 4, "classes": 2},
    "model": {
        "input_shape": [4],
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu", "kernel_initializer": "he_normal"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "training": {"epochs": 2, "batch_size": 20},
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, code: int = 2, *names: str) -> str:
    """The result failed with ``code``, one ``error:`` line and no traceback, naming each of ``names``."""
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


def write(tmp_path, spec, name="c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_key_given_twice_in_one_mapping_is_refused_at_its_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: dup\ntraining:\n  epochs: 3\n  batch_size: 8\n  epochs: 50\n")
    line = one_line_error(run("validate", path), 2, f"{path}:5", "'epochs' appears twice", "line 3")
    assert "silently" in line


def test_a_key_a_merge_brought_may_be_given_again(tmp_path):
    # what merges are for: <<: *base, then one value changed
    path = tmp_path / "merge.yaml"
    spec = yaml.safe_dump({k: v for k, v in TINY.items() if k != "training"}, sort_keys=False)
    path.write_text(spec + "base: &b {epochs: 3, batch_size: 4}\ntraining:\n  <<: *b\n  epochs: 5\n")
    mapping, _ = read_config_file(path)
    assert mapping["training"] == {"epochs": 5, "batch_size": 4}


def test_a_config_of_many_plain_values_counts_each_once(tmp_path):
    # 24,000 values nested three deep were counted once per level and refused as an alias bomb
    path = tmp_path / "many.yaml"
    rows = "\n".join(f"    - [{i}, {i + 1}, {i + 2}]" for i in range(8000))
    path.write_text(f"name: many\nextra:\n  rows:\n{rows}\n")
    mapping, _ = read_config_file(path)
    assert len(mapping["extra"]["rows"]) == 8000
    big = tmp_path / "big.yaml"
    big.write_text("name: big\nvalues:\n" + "".join(f"  - {i}\n" for i in range(MAX_NODES + 10)))
    with pytest.raises(DnnError, match=r"more than 100,000 values; a config holds its settings") as err:
        read_config_file(big)
    assert "alias" not in str(err.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_config_read_through_a_named_pipe_is_read_once(tmp_path):
    # the file was opened twice (a second time for its first line): a pipe has nothing the second time, and hangs
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    text = yaml.safe_dump(TINY, sort_keys=False)

    def feed():
        with open(fifo, "w") as f:
            f.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    done = subprocess.run(
        [sys.executable, "-m", "dnncli", "validate", str(fifo)], capture_output=True, text=True, timeout=60
    )
    writer.join(5)
    assert done.returncode == 0, done.stderr
    assert "name: tiny" in done.stdout


@pytest.mark.parametrize(
    "key",
    ["data.classes", "monitor.growth_window", "training.epochs", "model.layers.0.units", "seed"],
)
def test_integers_past_any_sane_bound_are_refused_by_name(tmp_path, key):
    path = write(tmp_path, TINY)
    line = one_line_error(run("validate", path, "--set", f"{key}={HUGE}"), 2, key.rsplit(".", 1)[-1], "at most")
    assert "401 digits" in line and len(line) < 300  # the value is described, not printed in full


def test_a_seed_numpy_cannot_take_is_refused(tmp_path):
    path = write(tmp_path, TINY)
    one_line_error(run("validate", path, "--set", f"seed={2**32}"), 2, "seed", "4,294,967,295")


@pytest.mark.parametrize("tolerance", ["nan", "inf", "-1", "0"])
def test_gradcheck_refuses_a_tolerance_that_checks_nothing(tmp_path, tolerance):
    path = write(tmp_path, TINY)
    one_line_error(run("gradcheck", path, "--tolerance", tolerance), 2, "--tolerance", "> 0.0")


def test_a_negative_moving_variance_is_refused_before_a_nan_model_is_saved(tmp_path):
    spec = {**TINY, "model": {**TINY["model"], "layers": list(TINY["model"]["layers"])}}
    spec["model"]["layers"].insert(
        1, {"type": "batch_normalization", "moving_variance_initializer": {"name": "constant", "value": -1}}
    )
    out = tmp_path / "run"
    one_line_error(run("train", write(tmp_path, spec), "--out", out), 2, "moving_variance_initializer", "-1")
    assert not (out / "model.npz").exists()


def test_an_initializer_the_dtype_cannot_hold_is_refused(tmp_path):
    spec = {**TINY, "model": {**TINY["model"], "layers": [dict(layer) for layer in TINY["model"]["layers"]]}}
    spec["model"]["layers"][0]["kernel_initializer"] = {"name": "constant", "value": 1e39}
    out = tmp_path / "run"
    result = run("train", write(tmp_path, spec), "--out", out)
    one_line_error(result, 2, "kernel_initializer", "float32 cannot hold", "1e+39")
    assert "RuntimeWarning" not in result.output and not (out / "model.npz").exists()


def test_a_warm_start_from_nan_weights_is_refused_naming_the_array(tmp_path):
    path = write(tmp_path, TINY)
    first = tmp_path / "first"
    assert run("train", path, "--out", first, "--quiet").exit_code == 0
    weights = dict(np.load(first / "model.npz"))
    weights["layer0.kernel"] = weights["layer0.kernel"].copy()
    weights["layer0.kernel"][0, :2] = [np.nan, np.inf]
    np.savez(tmp_path / "nan.npz", **weights)
    out = tmp_path / "warm"
    one_line_error(
        run("train", path, "--init-weights", tmp_path / "nan.npz", "--out", out), 2, "layer0.kernel", "2 non"
    )
    assert not (out / "checkpoint.npz").exists()  # no "last finite" state made of NaN


def test_skip_batch_with_every_batch_skipped_stops_instead_of_logging_a_loss_of_zero(tmp_path):
    spec = {**TINY, "model": {**TINY["model"], "layers": [dict(layer) for layer in TINY["model"]["layers"]]}}
    spec["model"]["layers"][0]["kernel_initializer"] = {"name": "constant", "value": 3e38}  # inf in every batch
    spec["training"] = {**TINY["training"], "on_nonfinite": "skip_batch"}
    out = tmp_path / "run"
    result = run("train", write(tmp_path, spec), "--out", out)
    assert result.exit_code == 3, result.output
    assert "Every batch of epoch 1 was non-finite and skipped" in result.output
    assert "Traceback" not in result.output
    history = (out / "history.csv").read_text() if (out / "history.csv").exists() else ""
    assert ",0.0," not in history and "cleared" not in result.output
    # the ranked advice names what it found, not a bare layer name
    assert "1. dense:\n" not in result.output and "every kernel weight starts at the same value" in result.output


def test_training_that_overflows_prints_no_raw_numpy_warning(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnncli",
            "train",
            str(ROOT / "configs" / "exploding_relu.yaml"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert "RuntimeWarning" not in done.stderr and "encountered in" not in done.stderr + done.stdout


def test_inspecting_a_run_stopped_before_its_first_record_points_to_its_config(tmp_path):
    spec = {**TINY, "model": {**TINY["model"], "layers": [dict(layer) for layer in TINY["model"]["layers"]]}}
    spec["model"]["layers"][0]["kernel_initializer"] = {"name": "constant", "value": 3e38}
    out = tmp_path / "run"
    assert run("train", write(tmp_path, spec), "--out", out).exit_code == 3
    line = one_line_error(run("inspect-gradients", out), 2, "no gradients.csv records yet")
    assert f"dnn inspect-gradients {out / 'config.yaml'}" in line


def test_the_python_api_reads_a_yaml_spec_as_dnn_train_does(tmp_path):
    # it had a reader of its own: YAML 1.1 floats ("1e-3" a string), no size guard, duplicate keys silently merged
    from dnncli import build_model

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "input_shape: [3]\nlayers:\n"
        "  - {type: dense, units: 4, kernel_initializer: {name: random_normal, stddev: 1e-3}}\n"
    )
    model = build_model(spec)
    assert model.layers[0].kernel_initializer.get_config()["stddev"] == 1e-3
    spec.write_text("input_shape: [3]\ninput_shape: [4]\nlayers: []\n")
    with pytest.raises(DnnError, match="appears twice"):
        build_model(spec)
