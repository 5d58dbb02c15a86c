"""TensorBoard logs, read back with tensorboard's own event reader: the scalars are history.csv's and
gradients.csv's numbers, and a resumed run shows every epoch and step once."""

import builtins
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

SPEC = {
    "name": "tb",
    "seed": 3,
    "data": {"source": "synthetic", "generator": "blobs", "classes": 3, "n_features": 4, "n_samples": 240},
    "model": {
        "input_shape": [4],
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dropout", "rate": 0.1},
            {"type": "dense", "units": 6, "activation": "relu", "kernel_regularizer": {"name": "l2", "l2": 0.01}},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "optimizer": {"name": "sgd", "learning_rate": 0.05},
    "training": {
        "epochs": 3,
        "batch_size": 32,
        "validation_split": 0.2,
        "callbacks": {"reduce_lr_on_plateau": {"monitor": "val_loss", "patience": 1, "factor": 0.5}},
    },
    "monitor": {"every": 2},
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def read(folder: Path):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def train(tmp_path, *extra, spec=SPEC) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "tb.yaml"
    config.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    r = run("train", config, "--out", out, "--quiet", *extra)
    assert r.exit_code == 0, r.output
    return out


def without_tensorboardx(monkeypatch) -> None:
    real = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name.startswith("tensorboardX"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)


def epoch_scalars(out: Path) -> dict:
    """{history column: [(epoch, value)]} as TensorBoard shows them, in Keras's tags."""
    got = {}
    for folder, prefix in (("train", ""), ("validation", "val_")):
        acc = read(out / "tensorboard" / folder)
        for tag in acc.Tags()["scalars"]:
            name = tag.removeprefix("epoch_").replace("grad_norm/", "grad_norm.")
            got[prefix + name] = [(e.step, e.value) for e in acc.Scalars(tag)]
    return got


def test_epoch_scalars_equal_history_csv(tmp_path):
    out = train(tmp_path, "--tensorboard")
    history = rows(out / "history.csv")
    got = epoch_scalars(out)
    numeric = [c for c in history[0] if c not in ("epoch", "flags")]
    assert set(numeric) == set(got)  # loss, data_loss, penalty, accuracy, val_ twins, learning rate, time, norms
    assert {"loss", "data_loss", "penalty", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(got)
    for column in numeric:
        steps = [s for s, _ in got[column]]
        assert steps == [int(r["epoch"]) for r in history], column
        want = [float(r[column]) for r in history]
        # TensorBoard keeps a scalar as float32
        np.testing.assert_allclose([v for _, v in got[column]], want, rtol=1e-6, err_msg=column)


def test_recorded_steps_give_gradient_norm_scalars_and_histograms(tmp_path):
    out = train(tmp_path, "--tensorboard")
    records = rows(out / "gradients.csv")
    acc = read(out / "tensorboard" / "steps")
    layers = sorted({(int(r["layer_index"]), r["layer"]) for r in records})
    assert [t for t in acc.Tags()["scalars"] if t != "noise_scale"] == [
        f"grad_norm/{i:02d}_{name}" for i, name in layers
    ]
    noise = acc.Scalars("noise_scale")  # the gradient noise scale, at the steps the instruments measured
    measured = sorted({int(r["step"]) for r in records if r["noise_trace"] not in ("", "nan")})
    assert measured and [e.step for e in noise] == measured and all(e.value > 0 for e in noise)
    for i, name in layers:
        mine = [r for r in records if int(r["layer_index"]) == i]
        events = acc.Scalars(f"grad_norm/{i:02d}_{name}")
        assert [e.step for e in events] == [int(r["step"]) for r in mine]
        np.testing.assert_allclose([e.value for e in events], [float(r["grad_norm"]) for r in mine], rtol=1e-6)
        for kind in ("weights", "gradients", "activations"):
            hist = acc.Histograms(f"{kind}/{i:02d}_{name}")
            assert [h.step for h in hist] == [int(r["step"]) for r in mine]
        kernel = acc.Histograms(f"weights/{i:02d}_{name}")[0].histogram_value
        units = {0: 8, 2: 6, 3: 3}[i]
        fan_in = {0: 4, 2: 8, 3: 6}[i]
        assert kernel.num == units * fan_in


def test_config_text_and_hparams(tmp_path):
    out = train(tmp_path, "--tensorboard")
    acc = read(out / "tensorboard")
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    lines = (out / "config.yaml").read_text().splitlines()
    written = [ln for ln in lines if not ln.startswith(("# trained from", "# yaml-language-server"))]
    assert [ln[4:] for ln in text.splitlines()] == written  # the config, less the file's own comment lines
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["optimizer.learning_rate"].number_value == 0.05 and hp["optimizer.name"].string_value == "sgd"
    assert hp["model.layers.0.units"].number_value == 8 and hp["training.batch_size"].number_value == 32
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = {(m.name.group, m.name.tag) for m in exp.metric_infos}
    assert metrics == {(g, f"epoch_{m}") for g in ("train", "validation") for m in ("loss", "accuracy")}


def test_a_resumed_run_continues_its_event_files_without_duplicating_steps(tmp_path):
    out = train(tmp_path, "--tensorboard")
    saved = tmp_path / "epoch3"
    saved.mkdir()
    for f in ("checkpoint.npz", "config.yaml"):
        shutil.copy(out / f, saved / f)
    assert run("train", "--resume", out, "--epochs", 5, "--quiet").exit_code == 0
    # a crash after epochs 4 and 5 reached the event files but before their checkpoint: the run resumes from
    # epoch 3 and writes epochs 4 and 5 again; TensorBoard must show each once
    for f in ("checkpoint.npz", "config.yaml"):
        shutil.copy(saved / f, out / f)
    r = run("train", "--resume", out, "--epochs", 5, "--quiet")
    assert r.exit_code == 0, r.output
    history = rows(out / "history.csv")
    got = epoch_scalars(out)
    for column in ("loss", "val_accuracy", "learning_rate"):
        assert [s for s, _ in got[column]] == [1, 2, 3, 4, 5], column
        np.testing.assert_allclose([v for _, v in got[column]], [float(r[column]) for r in history], rtol=1e-6)
    acc = read(out / "tensorboard" / "steps")
    records = [r for r in rows(out / "gradients.csv") if r["layer_index"] == "0"]
    events = acc.Scalars("grad_norm/00_dense")
    assert [e.step for e in events] == [int(r["step"]) for r in records]
    assert len(acc.Histograms("weights/00_dense")) == len(records)
    assert len(read(out / "tensorboard").Tensors("config/text_summary")) == 1


def test_a_straight_run_and_a_resumed_one_log_the_same_numbers(tmp_path):
    straight = train(tmp_path / "a", "--tensorboard", "--epochs", 4)
    resumed = train(tmp_path / "b", "--tensorboard", "--epochs", 2)
    assert run("train", "--resume", resumed, "--epochs", 4, "--quiet").exit_code == 0
    a, b = epoch_scalars(straight), epoch_scalars(resumed)
    for column in ("loss", "accuracy", "val_loss", "penalty"):
        assert a[column] == b[column], column


def test_without_tensorboardx_the_error_says_what_to_install_and_makes_no_run(tmp_path, monkeypatch):
    without_tensorboardx(monkeypatch)
    config = tmp_path / "tb.yaml"
    config.write_text(yaml.safe_dump(SPEC))
    r = run("train", config, "--out", tmp_path / "run", "--tensorboard")
    assert r.exit_code == 2
    assert "training.tensorboard needs tensorboardX: pip install '.[tensorboard]'" in r.output
    assert not (tmp_path / "run").exists()


def test_the_flag_and_the_key_are_the_same_and_off_writes_nothing(tmp_path):
    spec = {**SPEC, "training": {**SPEC["training"], "tensorboard": True}}
    out = train(tmp_path / "key", spec=spec)
    assert (out / "tensorboard" / "train").is_dir()
    assert yaml.safe_load((train(tmp_path / "flag", "--tensorboard") / "config.yaml").read_text())["training"][
        "tensorboard"
    ]
    assert not (train(tmp_path / "off") / "tensorboard").exists()
    r = run("train", "--resume", out, "--tensorboard")
    assert r.exit_code == 2 and "goes on logging when resumed" in r.output


def test_resuming_a_logging_run_without_tensorboardx_is_one_line(tmp_path, monkeypatch):
    out = train(tmp_path, "--tensorboard", "--epochs", 1)
    without_tensorboardx(monkeypatch)
    r = run("train", "--resume", out, "--epochs", 2)
    assert r.exit_code == 2 and "needs tensorboardX: pip install '.[tensorboard]'" in r.output
    assert "Traceback" not in r.output


def test_histogram_bins_match_numpy_and_skip_a_range_without_width():
    from dnncli.experiment.tensorboard import _bins, _histogram

    rng = np.random.default_rng(0)
    for x in (rng.normal(size=1000), np.ones(5), rng.random(7) * 1e-12, np.array([0.0, 1.0])):
        counts, edges = _bins(x)
        want_counts, want_edges = np.histogram(x, 30)
        np.testing.assert_allclose(edges, want_edges)
        assert counts.sum() == len(x) and np.abs(counts - want_counts).sum() <= 2  # values on an edge may move
    assert _bins(np.full(4, 1e17)) is None and _histogram("t", np.array([1e308, -1e308])) == []
    (value,) = _histogram("t", np.array([np.nan, 1.0, np.inf, 2.0]))
    assert value.histo.num == 2 and value.histo.min == 1.0
