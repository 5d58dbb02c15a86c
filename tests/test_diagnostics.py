"""Gradient diagnostics: the teaching configs are flagged as the course says, and the commands work."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def inspect(config, *extra):
    r = run("inspect-gradients", ROOT / "configs" / config, "--json", *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def flags(report):
    return {layer["index"]: set(layer["flags"]) for layer in report["layers"]}


def test_deep_sigmoid_with_small_init_vanishes_in_its_first_layers():
    report = inspect("vanishing_sigmoid.yaml", "--steps", "20")
    f = flags(report)
    assert {0, 1, 2} <= {i for i, s in f.items() if "vanishing" in s}
    assert "vanishing" not in f[10]  # the last layer is the reference
    assert any("model.layers.*.activation=relu" in a["set"] for a in report["advice"])
    layer0 = report["layers"][0]
    assert layer0["index"] == 0 and layer0["name"] == "dense" and len(layer0["grad_norm"]) == len(report["steps"]) == 20
    assert max(layer0["grad_norm"]) < 1e-6 < min(report["layers"][-1]["grad_norm"])


def test_deep_relu_with_large_init_and_high_learning_rate_explodes():
    report = inspect("exploding_relu.yaml", "--steps", "20")
    raised = set().union(*flags(report).values())
    assert raised & {"exploding", "nonfinite"}
    sets = [o for a in report["advice"] for o in a["set"]]
    assert "optimizer.clipnorm=1.0" in sets and "optimizer.learning_rate=0.01" in sets


def test_same_depth_with_he_init_and_batch_norm_raises_no_flag():
    report = inspect("healthy_deep.yaml", "--steps", "30")
    assert all(not s for s in flags(report).values()), report["layers"]
    assert report["advice"] == []


def test_relu_layer_with_large_negative_bias_is_dead():
    report = inspect("dead_relu.yaml", "--steps", "20")
    assert "dead" in flags(report)[1] and "dead" not in flags(report)[0]
    assert any("model.layers.1.activation=leaky_relu" in a["set"] for a in report["advice"])


def test_dead_units_are_judged_over_256_samples_at_least_in_stochastic_mode():
    # one sample switches off half or more of a live relu layer (biases at -0.3 here): that is not death,
    # and was flagged as such when one sample was judged alone (and, by chance, over 32 samples); the layer with
    # biases at -4 stays dead
    bias = "model.layers.0.bias_initializer={name: constant, value: -0.3}"
    report = inspect("dead_relu.yaml", "--steps", "1300", "--set", "training.batch_size=1", "--set", bias)
    assert "dead" not in flags(report)[0] and "dead" in flags(report)[1]
    # and in the record of every step, a dead fraction appears only once 256 samples were seen
    from dnncli.diagnostics.monitor import DEAD_WINDOW, GradientMonitor
    from dnncli.experiment.config import load as load_config
    from dnncli.experiment.prepare import prepare_data
    from dnncli.train.trainer import Trainer

    config = load_config(ROOT / "configs" / "dead_relu.yaml", ["training.batch_size=1", "monitor.every=1"])
    model, loss = config.build_model(), config.build_loss()
    data = prepare_data(config, model, loss)
    monitor = GradientMonitor(model, config["monitor"])
    trainer = Trainer(model, loss, config.build_optimizer(), 1, True, 0)
    trainer.fit(data.x_train[: DEAD_WINDOW + 8], data.y_train[: DEAD_WINDOW + 8], 1, callbacks=[monitor])
    dead0 = [r["dead_fraction"] for r in monitor.take_records() if r["layer_index"] == 0]
    assert all(np.isnan(d) for d in dead0[: DEAD_WINDOW - 1])
    assert 0.0 <= dead0[DEAD_WINDOW - 1] < 0.5 and np.isnan(dead0[DEAD_WINDOW])


def test_table_output_and_every(tmp_path):
    r = run("inspect-gradients", ROOT / "configs" / "vanishing_sigmoid.yaml", "--steps", "12", "--every", "4")
    assert r.exit_code == 0, r.output
    assert "step 1" in r.output and "step 9" in r.output and "vanishing" in r.output and "Advice" in r.output
    report = inspect("vanishing_sigmoid.yaml", "--steps", "12", "--every", "4")
    assert report["steps"] == [1, 5, 9]


def test_thresholds_come_from_the_monitor_section(tmp_path):
    report = inspect("healthy_deep.yaml", "--steps", "10", "--set", "monitor.vanishing_floor=100")
    assert all("vanishing" in s for s in flags(report).values())
    r = run("validate", ROOT / "configs" / "healthy_deep.yaml", "--set", "monitor.vanishing_flor=1")
    assert r.exit_code == 2 and "Did you mean 'vanishing_floor'" in r.output


def test_train_shows_flags_and_records_every_statistic(tmp_path):
    out = tmp_path / "run"
    r = run("train", ROOT / "configs" / "vanishing_sigmoid.yaml", "--epochs", "2", "--out", out)
    assert r.exit_code == 0, r.output
    assert "flag raised: dense (0, sigmoid) vanishing" in r.output
    assert "Flags raised during the run" in r.output and f"dnn inspect-gradients {out}" in r.output
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert "dense: vanishing" in rows[0]["flags"]
    report = json.loads(run("inspect-gradients", out, "--json").output)
    assert report["steps"] == [1, 2] and len(report["layers"]) == 11
    assert "vanishing" in report["layers"][0]["flags"]


def test_nonfinite_provenance_names_layer_and_stage(tmp_path):
    out = tmp_path / "run"
    r = run("train", ROOT / "configs" / "exploding_relu.yaml", "--out", out)
    assert r.exit_code == 3, r.output
    assert "Non-finite values first appeared in" in r.output and "layer" in r.output and "epoch 1, step" in r.output
    with np.load(out / "nonfinite_batch.npz") as nb:
        assert len(nb["indices"]) == 32
    with np.load(out / "checkpoint.npz") as ck:
        assert all(np.isfinite(ck[k]).all() for k in ck.files if k.startswith("weights."))


def test_skip_batch_skips_and_counts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    x[17] = 3e38  # finite, but its prediction's square overflows: that batch's loss is not finite
    y = x[:, 0] - x[:, 1]
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.savez(tmp_path / "test.npz", x=x[20:50], y=y[20:50])  # a test file of its own: sample 17 always trains
    cfg = {
        "data": {"source": "npz", "path": str(tmp_path / "d.npz"), "test_path": str(tmp_path / "test.npz")},
        "model": {
            "input_shape": [3],
            "layers": [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 1}],
        },
        "loss": "mse",
        "training": {"epochs": 2, "batch_size": 10, "shuffle": False, "on_nonfinite": "skip_batch"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = run("train", tmp_path / "c.yaml", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert [row["skipped_batches"] for row in rows] == ["1", "1"]
    assert np.isfinite(float(rows[-1]["loss"]))
    stop = run("train", tmp_path / "c.yaml", "--out", tmp_path / "run2", "--set", "training.on_nonfinite=stop")
    assert stop.exit_code == 3 and "Non-finite values first appeared in" in stop.output


def test_gradcheck_passes_and_fails(tmp_path, monkeypatch):
    r = run("gradcheck", ROOT / "configs" / "notes_bn_dropout.yaml", "--samples", "5")
    assert r.exit_code == 0, r.output
    assert "All gradients match" in r.output and "gamma" in r.output and "kernel" in r.output
    from dnncli.nn import layers

    original = layers.Dense.backward

    def broken(self, dA, skip_activation=False):
        dX = original(self, dA, skip_activation)
        self.grads["kernel"] *= 1.01  # a 1% error in every kernel gradient
        return dX

    monkeypatch.setattr(layers.Dense, "backward", broken)
    r = run("gradcheck", ROOT / "configs" / "binary_classifier.yaml")
    assert r.exit_code == 1 and "FAIL" in r.output and "Some gradients do not match" in r.output


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert run("train", ROOT / "configs" / "quickstart.yaml", "--epochs", "3", "--out", out, "--quiet").exit_code == 0
    r = run("plot", out)
    assert r.exit_code == 0, r.output
    png = (out / "plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    r = run("plot", out, "--out", out / "plot.png")
    assert r.exit_code == 2 and "exists already" in r.output


def test_bench_reports_the_split_without_asserting_speed():
    r = run("bench", ROOT / "configs" / "quickstart.yaml", "--steps", "5", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["batch_size"] == 32 and report["samples_per_second"] > 0 and report["gflops_per_step"] > 0
    assert set(report["split_seconds"]) == {
        "data",
        "matrix products",
        "activations and other layer work",
        "loss",
        "optimizer",
        "monitor",
        "display",
    }
    assert report["efficiency"] > 0
    r = run("bench", ROOT / "configs" / "quickstart.yaml", "--steps", "3")
    assert r.exit_code == 0 and "Where a step's time goes" in r.output and "efficiency" in r.output
