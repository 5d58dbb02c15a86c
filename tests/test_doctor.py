"""``dnn doctor``: each check passes on a healthy network and fails, with the right fix, on a network built to fail
it; the gradient noise scale against per-sample gradients materialized in float64. (The update ratio against the
weights before and after a step, for every optimizer: ``tests/test_advice.py``.)"""

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.diagnostics import checkup, noise
from dnncli.diagnostics.monitor import GradientMonitor
from dnncli.experiment.config import load
from dnncli.experiment.doctor import doctor
from dnncli.nn import losses
from dnncli.nn.model import Sequential

BLOBS = {"source": "synthetic", "generator": "blobs", "n_samples": 600, "n_features": 8, "classes": 3}


def dense(units, activation, **more):
    init = "he_normal" if activation == "relu" else "glorot_uniform"
    return {"type": "dense", "units": units, "activation": activation, "kernel_initializer": init, **more}


def spec(name, **top):
    out = {
        "name": name,
        "seed": 0,
        "data": {**BLOBS, "cluster_std": 2.0, "scale": "standardize"},
        "model": {"input_shape": [8], "layers": [dense(32, "relu"), dense(32, "relu"), dense(3, "softmax")]},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "optimizer": {"name": "sgd", "learning_rate": 0.05},
        "training": {"epochs": 5, "batch_size": 32, "validation_split": 0.2},
    }
    return out | top


def write(tmp_path: Path, mapping: dict) -> Path:
    path = tmp_path / f"{mapping['name']}.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def arrays(tmp_path: Path, name: str, x, y, **more) -> dict:
    """An npz data section over ``x``, ``y`` (and a test file from ``more``: ``test_x``, ``test_y``)."""
    np.savez(tmp_path / f"{name}.npz", x=x, y=y)
    data = {"source": "npz", "path": str(tmp_path / f"{name}.npz"), "scale": "standardize"}
    if "test_x" in more:
        np.savez(tmp_path / f"{name}_test.npz", x=more["test_x"], y=more["test_y"])
        data["test_path"] = str(tmp_path / f"{name}_test.npz")
    return data


def blobs(n=600, features=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (classes, features))
    y = rng.integers(0, classes, n)
    return (centres[y] + rng.normal(0, 2, (n, features))).astype(np.float32), y


def checks(config_path, *groups) -> dict:
    return {c.name: c for c in doctor(load(config_path), only=groups or None).checks}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_every_check_passes_on_a_healthy_network(tmp_path):
    report = doctor(load(write(tmp_path, spec("healthy"))))
    assert [c.name for c in report.checks] == [
        "input scale",
        "constant inputs",
        "class balance",
        "split leakage",
        "initial loss",
        "overfit one batch",
        "uses its inputs",
        "gradient flow",
        "update ratio",
        "batch size",
        "learning rate",
        "gradient check",
    ]
    assert {c.name: c.verdict for c in report.checks if c.verdict != "ok"} == {}
    assert report.fixes() == [] and report.seconds < 20


def test_shuffled_labels_overfit_one_batch_but_do_not_use_the_inputs(tmp_path):
    x, y = blobs()
    shuffled = np.random.default_rng(1).permutation(y)
    found = checks(
        write(tmp_path, spec("shuffled", data=arrays(tmp_path, "shuffled", x, shuffled))), "overfit", "inputs zeroed"
    )
    assert found["overfit one batch"].verdict == "ok"  # one batch is memorized, labels or not
    zeroed = found["uses its inputs"]
    assert zeroed.verdict == "fail" and "not using its inputs" in zeroed.hint


def test_an_output_bias_of_5_fails_the_initial_loss_and_names_the_bias(tmp_path):
    layers = [dense(32, "relu"), dense(1, "sigmoid", bias_initializer={"name": "constant", "value": 5.0})]
    binary = {**BLOBS, "classes": 2, "scale": "standardize"}
    found = checks(
        write(
            tmp_path,
            spec("bias5", data=binary, model={"input_shape": [8], "layers": layers}, loss="binary_crossentropy"),
        ),
        "initial loss",
    )["initial loss"]
    assert found.verdict == "fail" and found.expected == pytest.approx(math.log(2))
    assert found.fix == ["model.layers.1.bias_initializer=zeros"] and "bias starts at up to 5" in found.detail


def test_inputs_in_the_thousands_fail_the_input_scale_with_standardize(tmp_path):
    x, y = blobs()
    data = {**arrays(tmp_path, "thousands", x * 1000 + 3000, y), "scale": "none"}
    found = checks(write(tmp_path, spec("thousands", data=data)), "inputs")["input scale"]
    assert found.verdict == "fail" and found.measured > 1000 and found.fix == ["data.scale=standardize"]


def test_a_dominant_class_fails_with_class_weight(tmp_path):
    x, _ = blobs()
    y = np.where(np.arange(len(x)) % 20 == 0, 1, 0)  # 95% class 0
    found = checks(write(tmp_path, spec("dominant", data=arrays(tmp_path, "dominant", x, y))), "inputs")
    balance = found["class balance"]
    assert balance.verdict == "fail" and balance.measured > 0.9 and balance.fix == ["training.class_weight=balanced"]


def test_rows_duplicated_across_the_splits_fail_as_leakage(tmp_path):
    x, y = blobs()
    data = arrays(tmp_path, "leak", x, y, test_x=np.concatenate([x[:40], x[-40:] + 0.5]), test_y=np.r_[y[:40], y[-40:]])
    mapping = spec("leak", data=data)
    mapping["training"] = {"epochs": 5, "batch_size": 32}  # no validation split: every training row is in
    found = checks(write(tmp_path, mapping), "inputs")["split leakage"]
    assert found.verdict == "fail" and found.measured == 40 and "40 of 80 test samples" in found.detail


def test_a_learning_rate_100x_too_high_fails_with_the_range_test_s_rate(tmp_path):
    healthy = checks(write(tmp_path, spec("rate")), "learning rate")["learning rate"]
    assert healthy.verdict == "ok"
    high = checks(write(tmp_path, spec("rate", optimizer={"name": "sgd", "learning_rate": 5.0})), "learning rate")
    found = high["learning rate"]
    assert found.verdict == "fail" and found.fix == [f"optimizer.learning_rate={float(f'{found.expected:.2g}'):g}"]
    assert 0.01 < found.expected < 1.0


def test_a_batch_of_4096_on_a_noise_scale_near_50_fails_with_a_batch_near_it(tmp_path):
    data = {**BLOBS, "n_samples": 6000, "cluster_std": 8.0, "scale": "standardize"}
    mapping = spec("big_batch", data=data, training={"epochs": 1, "batch_size": 4096})
    found = checks(write(tmp_path, mapping), "noise scale")["batch size"]
    assert 25 < found.expected < 100  # B_simple at the start
    assert found.verdict == "fail" and found.fix == [f"training.batch_size={2 ** round(math.log2(found.expected))}"]
    # the same noise scale measured in batches of the fix: the same verdict's number, and no new fix
    fixed = {**mapping, "training": {"epochs": 1, "batch_size": int(found.fix[0].split("=")[1])}}
    again = checks(write(tmp_path, fixed), "noise scale")["batch size"]
    assert again.verdict == "ok" and again.expected == pytest.approx(found.expected, rel=0.3)


def test_a_one_unit_bottleneck_fails_to_overfit_one_batch_and_is_widened(tmp_path):
    layers = [dense(1, "relu"), dense(3, "softmax")]
    found = checks(write(tmp_path, spec("narrow", model={"input_shape": [8], "layers": layers})), "overfit")
    assert found["overfit one batch"].verdict == "fail" and found["overfit one batch"].fix == [
        "model.layers.0.units=64"
    ]


def test_vanishing_gradients_fail_the_gradient_flow_with_the_first_advice(tmp_path):
    small = {"name": "random_normal", "mean": 0.0, "stddev": 0.01}
    layers = [dense(32, "sigmoid", kernel_initializer=small) for _ in range(8)] + [dense(3, "softmax")]
    found = checks(write(tmp_path, spec("vanish", model={"input_shape": [8], "layers": layers})), "first steps")
    flow = found["gradient flow"]
    assert flow.verdict == "fail" and "vanishing" in flow.detail and flow.fix and "kernel_initializer" in flow.fix[0]


def test_a_wrong_backward_pass_fails_the_gradient_check(tmp_path, monkeypatch):
    from dnncli.nn.layers import Dense

    backward = Dense.backward

    def wrong(self, *args, **kwargs):  # the bias gradient off by half
        out = backward(self, *args, **kwargs)
        self.grads["bias"] *= 1.5
        return out

    path = write(tmp_path, spec("wrong"))
    assert checks(path, "gradient check")["gradient check"].verdict == "ok"
    monkeypatch.setattr(Dense, "backward", wrong)
    found = checks(path, "gradient check")["gradient check"]
    assert found.verdict == "fail" and "bias" in found.detail


def test_the_update_ratio_band_around_1e_3():
    assert checkup.update_ratio([("a", 1e-3), ("b", 5e-3)]).verdict == "ok"
    assert checkup.update_ratio([("a", 1e-3), ("b", 0.2)]).measured == 0.2
    assert checkup.update_ratio([("a", 0.2)]).verdict == "warn"
    assert checkup.update_ratio([("a", 1e-7)]).verdict == "warn"
    assert checkup.update_ratio([("a", 3.0)]).verdict == "fail"


# the noise scale ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss_name, units, activation, regularizer",
    [
        ("sparse_categorical_crossentropy", 3, "softmax", None),
        ("binary_crossentropy", 2, "sigmoid", {"name": "l2", "l2": 0.05}),
        ("mean_squared_error", 2, "linear", {"name": "l1", "l1": 0.01}),
    ],
)
def test_the_noise_scale_equals_one_from_materialized_per_sample_gradients(loss_name, units, activation, regularizer):
    layers = [
        {"type": "dense", "units": 7, "activation": "tanh", "kernel_regularizer": regularizer},
        {"type": "dense", "units": 4, "activation": "relu", "use_bias": False},
        {"type": "dense", "units": units, "activation": activation},
    ]
    rng = np.random.default_rng(0)
    n = 16
    x = rng.normal(size=(n, 5))
    loss = losses.get(loss_name)
    raw = {"sparse": rng.integers(0, 3, n), "binary": rng.integers(0, 2, (n, 2)).astype(float)}
    y = loss.prepare_targets(raw.get(loss_name.split("_")[0], rng.normal(size=(n, 2))), units, np.float64)
    model = Sequential(layers, [5], dtype="float64", seed=0)
    model.compute_gradients(x, y, loss)
    trace, signal = noise.total(
        [dict(zip(("noise_trace", "signal_sq"), noise.dense_noise(layer))) for layer in model.layers]
    )
    # each sample's gradient of the data loss alone, one backward pass each
    plain = Sequential([{**spec, "kernel_regularizer": None} for spec in layers], [5], dtype="float64", seed=0)
    for mine, theirs in zip(model.layers, plain.layers):
        for key, value in mine.params.items():
            theirs.params[key][...] = value
    grads = np.array(
        [
            np.concatenate([g.ravel() for g in plain.compute_gradients(x[i : i + 1], y[i : i + 1], loss)[1]])
            for i in range(n)
        ]
    )
    mean = grads.mean(axis=0)
    direct_trace = ((grads - mean) ** 2).sum() / (n - 1)
    direct_signal = mean @ mean - direct_trace / n
    assert trace == pytest.approx(direct_trace, rel=1e-10)
    assert signal == pytest.approx(direct_signal, rel=1e-8, abs=1e-12)
    # one batch's |G|^2 may come out negative (random targets): the scale is then unbounded
    expected = direct_trace / direct_signal if direct_signal > 0 else math.inf
    assert noise.b_simple([trace], [signal]) == pytest.approx(expected, rel=1e-7)


def test_the_estimates_do_not_depend_on_the_batch_size():
    # at fixed weights, the mean of small batches' estimates and one large batch's estimate agree
    rng = np.random.default_rng(3)
    model = Sequential(
        [{"type": "dense", "units": 6, "activation": "tanh"}, {"type": "dense", "units": 1}],
        [4],
        dtype="float64",
        seed=0,
    )
    loss = losses.get("mean_squared_error")
    x = rng.normal(size=(8192, 4))
    y = (x[:, :1] * 2 + rng.normal(size=(8192, 1))).astype(np.float64)

    def estimates(batch):
        sums = np.zeros(2)
        for start in range(0, len(x), batch):
            model.compute_gradients(x[start : start + batch], y[start : start + batch], loss)
            sums += noise.total(
                [dict(zip(("noise_trace", "signal_sq"), noise.dense_noise(layer))) for layer in model.layers]
            )
        return sums / (len(x) // batch)

    small, large = estimates(32), estimates(8192)
    np.testing.assert_allclose(small, large, rtol=0.1)


def test_layers_before_a_batch_normalization_are_not_measured(tmp_path):
    layers = [dense(16, "relu"), {"type": "batch_normalization"}, dense(16, "relu"), dense(3, "softmax")]
    config = load(write(tmp_path, spec("bn", model={"input_shape": [8], "layers": layers})))
    model = config.build_model()
    assert noise.measured_layers(model) == {2, 3}
    monitor = GradientMonitor(model, {**config["monitor"], "every": 1}, config.build_loss())
    assert monitor.instruments.noisy == {2, 3}


# the command -------------------------------------------------------------------------------------------
def test_the_command_exits_1_on_a_failure_writes_every_fix_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = blobs()
    data = {**arrays(tmp_path, "raw", x * 1000 + 3000, y), "scale": "none"}
    config = write(tmp_path, spec("raw", data=data))
    r = run("doctor", config, "--json")
    assert r.exit_code == 1, r.output
    report = json.loads(r.stdout)  # strict: no NaN
    assert "NaN" not in r.stdout and report["passed"] is False
    assert "data.scale=standardize" in report["fixes"]
    r = run("doctor", config, "--write-config", "fixed.yaml")
    assert r.exit_code == 1 and "Wrote fixed.yaml" in r.output
    fixed = load(tmp_path / "fixed.yaml")
    assert fixed["data"]["scale"] == "standardize"
    assert "# raw (" in (tmp_path / "fixed.yaml").read_text()  # what was changed, said in its comment
    assert run("doctor", config, "--write-config", "fixed.yaml").exit_code == 2  # kept without --force
    r = run("doctor", tmp_path / "fixed.yaml")
    assert "input scale         ok" in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.yaml", "raw.npz", "raw.yaml"]  # no run


def test_the_table_fits_80_columns_and_names_each_fix():
    from rich.console import Console

    from dnncli.cli.views.doctor import doctor_view
    from dnncli.cli.views.tables import show
    from dnncli.experiment.doctor_report import DoctorReport

    long = checkup.Check(
        "gradient flow", "fail", 11, 0, "=", "exploding", ["model.layers.*.kernel_initializer=he_normal"]
    )
    report = DoctorReport("x", "configs/x.yaml", [long, checkup.Check("batch size", "ok", 32, 22.07, "~", "fine")], 1.0)
    console = Console(width=80, record=True, file=io.StringIO())
    show(console, doctor_view(console, report))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "22.070" in text and "nan" not in text and "--set 'model.layers.*.kernel_initializer=he_normal'" in text
