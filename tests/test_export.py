"""ONNX export: onnxruntime's outputs equal dnn predict's, for every layer, activation and output transform."""

import csv
import errno
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dnncli import files
from dnncli.errors import DnnError
from dnncli.experiment import api
from dnncli.experiment.evaluate import load_run, predict_run
from dnncli.experiment.export import OPSET, build_onnx, export_onnx
from dnncli.experiment.export import activations as export_activations
from dnncli.files import StorageError
from dnncli.nn import activations, layers
from dnncli.nn.model import Sequential

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def train(tmp_path: Path, spec: dict, name: str = "run") -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(spec))
    api.train(config, out=tmp_path / name)
    return tmp_path / name


def run_onnx(path_or_proto, x) -> dict:
    source = str(path_or_proto) if isinstance(path_or_proto, Path) else path_or_proto.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": x})))


def predicted_classes(run_dir, x, tmp_path) -> list[int]:
    """The class column of ``dnn predict``'s CSV for ``x``."""
    np.save(tmp_path / "x.npy", x)
    head, rows = predict_run(run_dir, tmp_path / "x.npy")
    assert head[0] == "class"
    return [row[0] for row in rows]


CLASSIFIER = {
    "seed": 2,
    "data": {
        "source": "synthetic",
        "generator": "blobs",
        "classes": 3,
        "n_features": 4,
        "n_samples": 300,
        "scale": "standardize",
    },
    "model": {
        "input_shape": [4],
        "layers": [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "batch_normalization"},
            {"type": "dropout", "rate": 0.3},
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "batch_normalization", "center": False, "scale": False, "epsilon": 0.01},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "training": {"epochs": 3, "batch_size": 32},
}


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("classifier"), CLASSIFIER)


def test_classifier_with_batch_norm_and_dropout_matches_predict(classifier_run, tmp_path):
    result = export_onnx(classifier_run, tmp_path / "m.onnx")
    _, model, _, _ = load_run(classifier_run)
    assert np.abs(model.layers[1].params["moving_mean"]).max() > 0.01  # trained statistics, not the initial ones
    x = np.random.default_rng(0).normal(size=(40, 4)) * 4
    got = run_onnx(result.path, x.astype(np.float32))
    np.testing.assert_allclose(got["probabilities"], api.predict(classifier_run, x), rtol=1e-5, atol=1e-6)
    assert got["class"].dtype == np.int64
    assert got["class"].tolist() == predicted_classes(classifier_run, x, tmp_path)
    assert [o.name for o in result.outputs] == ["probabilities", "class"]
    assert result.input.shape == (None, 4) and result.input.dtype == "float32"
    assert result.outputs[0].shape == (None, 3) and result.outputs[1].shape == (None,)
    stages = {s.stage.split(" '")[0]: s.ops for s in result.steps}
    assert stages["input scaling (standardize)"] == ("Sub", "Div")
    assert stages["layer 1 batch_normalization"] == ("Mul", "Add")
    assert stages["layer 2 dropout"] == ()  # the identity at inference
    assert json.loads(json.dumps(result.to_dict()))["outputs"][1] == {
        "name": "class",
        "dtype": "int64",
        "shape": [None],
    }


@pytest.mark.parametrize(
    ("scale", "target_scale", "dtype"), [("standardize", "standardize", "float32"), ("minmax", 10.0, "float64")]
)
def test_regression_undoes_the_target_scaling_as_predict(tmp_path, scale, target_scale, dtype):
    spec = {
        "seed": 3,
        "dtype": dtype,
        "data": {
            "source": "synthetic",
            "generator": "regression",
            "n_samples": 300,
            "n_features": 3,
            "scale": scale,
            "target_scale": target_scale,
        },
        "model": {
            "input_shape": [3],
            "layers": [{"type": "dense", "units": 16, "activation": "elu"}, {"type": "dense", "units": 1}],
        },
        "loss": "mse",
        "training": {"epochs": 3, "batch_size": 32},
    }
    run_dir = train(tmp_path, spec)
    result = export_onnx(run_dir)
    assert result.path == run_dir / "model.onnx" and [o.name for o in result.outputs] == ["values"]
    x = np.random.default_rng(1).uniform(-2, 2, size=(30, 3))
    got = run_onnx(result.path, x.astype(dtype))["values"]
    assert got.dtype == np.dtype(dtype)
    want = api.predict(run_dir, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert result.steps[-1].ops == ("Mul", "Add")  # the target scaling undone


def test_image_input_is_flattened_in_the_graph(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(200, 6, 5)).astype(np.float64)
    y = (x[:, :, :2].mean(axis=(1, 2)) > x[:, :, 3:].mean(axis=(1, 2))).astype(np.int64)
    np.savez(tmp_path / "images.npz", x=x, y=y)
    spec = {
        "seed": 4,
        "data": {"source": "npz", "path": str(tmp_path / "images.npz"), "scale": 255},
        "model": {
            "input_shape": [6, 5],
            "layers": [
                {"type": "flatten"},
                {"type": "dense", "units": 8, "activation": "gelu"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
        },
        "loss": "sparse_categorical_crossentropy",
        "training": {"epochs": 2, "batch_size": 32},
    }
    run_dir = train(tmp_path, spec)
    result = export_onnx(run_dir)
    assert result.input.shape == (None, 6, 5)
    graph_input = onnx.load(result.path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in graph_input] == ["batch", 6, 5]
    images = rng.integers(0, 256, size=(12, 6, 5))
    got = run_onnx(result.path, images.astype(np.float32))
    np.testing.assert_allclose(got["probabilities"], api.predict(run_dir, images), rtol=1e-5, atol=1e-6)
    assert got["class"].tolist() == predicted_classes(run_dir, images, tmp_path)


@pytest.mark.parametrize(
    ("loss", "generator", "units"),
    [("sparse_categorical_crossentropy", "blobs", 3), ("binary_crossentropy", "moons", 1)],
)
def test_a_classifier_trained_on_logits_outputs_probabilities(tmp_path, loss, generator, units):
    data = {"source": "synthetic", "generator": generator, "n_samples": 200, "scale": "minmax"}
    spec = {
        "seed": 5,
        "data": data | ({"classes": units} if generator == "blobs" else {}),
        "model": {
            "input_shape": [2],
            "layers": [{"type": "dense", "units": 8, "activation": "swish"}, {"type": "dense", "units": units}],
        },
        "loss": {"name": loss, "from_logits": True},
        "training": {"epochs": 3, "batch_size": 32},
    }
    run_dir = train(tmp_path, spec)
    result = export_onnx(run_dir)
    assert result.steps[-2].ops == (("Softmax",) if units > 1 else ("Sigmoid",))
    x = np.random.default_rng(2).normal(size=(25, 2)) * 2
    got = run_onnx(result.path, x.astype(np.float32))
    probs = got["probabilities"]
    assert probs.min() >= 0 and probs.max() <= 1
    np.testing.assert_allclose(probs, api.predict(run_dir, x), rtol=1e-5, atol=1e-6)
    assert got["class"].tolist() == predicted_classes(run_dir, x, tmp_path)


def test_table_inputs_are_the_encoded_row_and_columns_and_class_names_are_recorded(tmp_path):
    rng = np.random.default_rng(6)
    colors = ["red", "green", "blue"]
    lines = ["a,color,b,label"]
    for _ in range(120):
        a, b, color = rng.normal(), rng.normal() * 10, colors[rng.integers(3)]
        label = "yes" if a + b / 10 + (color == "red") > 0.5 else "no"
        lines.append(f"{a:.4f},{color},{b:.4f},{label}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    spec = {
        "seed": 6,
        "data": {
            "source": "csv",
            "path": str(tmp_path / "t.csv"),
            "target": "label",
            "categorical": ["color"],
            "scale": "standardize",
        },
        "model": {"input_shape": [5], "layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
        "loss": "sparse_categorical_crossentropy",
        "training": {"epochs": 2, "batch_size": 16},
    }
    run_dir = train(tmp_path, spec)
    result = export_onnx(run_dir)
    props = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert props == result.metadata
    assert json.loads(props["input_columns"]) == ["a", "color=blue", "color=green", "color=red", "b"]
    assert json.loads(props["class_names"]) == ["no", "yes"]
    (tmp_path / "new.csv").write_text("a,color,b,label\n0.1,red,3,no\n-1,blue,-5,no\n2,green,1,yes\n")
    head, rows = predict_run(run_dir, tmp_path / "new.csv")
    _, _, _, prep = load_run(run_dir)
    with open(tmp_path / "new.csv", newline="") as f:
        records = list(csv.reader(f))
    encoded = prep.encoder.transform(records[0], records[1:], [2, 3, 4], "new.csv")
    got = run_onnx(result.path, encoded.astype(np.float32))
    assert head == ["class", "label", "p_0", "p_1"]
    np.testing.assert_allclose(got["probabilities"], [r[2:] for r in rows], rtol=1e-5, atol=1e-6)
    assert got["class"].tolist() == [r[0] for r in rows]


ACTIVATION_SPECS = sorted(activations.ACTIVATIONS) + [
    {"name": "leaky_relu", "negative_slope": 0.05},
    {"name": "elu", "alpha": 0.5},
    {"name": "gelu", "approximate": True},
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "spec", ACTIVATION_SPECS, ids=lambda s: s if isinstance(s, str) else "-".join(map(str, s.values()))
)
def test_every_activation_matches_its_numpy_forward(spec, dtype):
    model = Sequential([{"type": "activation", "activation": spec}], [7], dtype=dtype)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(size=(20, 7)) * 4, [[-100.0, -30.0, -1e-4, 0.0, 1e-4, 30.0, 100.0]]])
    x = x.astype(dtype)
    got = run_onnx(build_onnx(model), x)["values"]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-6)


def test_the_file_is_checked_written_atomically_and_never_silently_replaced(classifier_run, tmp_path, monkeypatch):
    out = tmp_path / "m.onnx"
    result = export_onnx(classifier_run, out)
    proto = onnx.load(out)
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)] and result.opset == OPSET
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    before = out.read_bytes()

    with pytest.raises(DnnError, match=r"m\.onnx: exists already.*--force"):
        export_onnx(classifier_run, out)

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(StorageError, match="no space left"):
        export_onnx(classifier_run, out, force=True)
    monkeypatch.undo()
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]

    out.write_bytes(b"stale")
    export_onnx(classifier_run, out, force=True, opset=13)
    assert out.read_bytes() != b"stale" and run_onnx(out, np.zeros((2, 4), np.float32))["probabilities"].shape == (2, 3)

    with pytest.raises(DnnError, match="does not exist"):
        export_onnx(classifier_run, tmp_path / "no" / "m.onnx")
    with pytest.raises(DnnError, match="opset must be an integer from 13"):
        export_onnx(classifier_run, tmp_path / "old.onnx", opset=11)


class Cube(activations.Activation):
    name = "cube"

    def forward(self, Z, out=None):
        return np.power(Z, 3, out=out)


class Doubler(layers.Layer):
    type_name = "doubler"

    def forward(self, X, training=False):
        return X * 2


class MyReLU(activations.ReLU):
    name = "my_relu"  # a subclass may change the maths: not exported as its parent


def test_an_architecture_without_onnx_equivalent_names_the_layer(classifier_run, tmp_path, monkeypatch):
    model = Sequential([{"type": "dense", "units": 3}, Doubler(name="twice")], [2])
    with pytest.raises(DnnError, match=r"layer 1 \('twice', type 'doubler'\) has no ONNX equivalent"):
        build_onnx(model)
    for activation in (Cube(), MyReLU()):
        model = Sequential([{"type": "dense", "units": 3}, {"type": "dense", "units": 2}], [2])
        model.layers[1].activation = activation
        with pytest.raises(DnnError, match=rf"layer 1 \('dense_1'\): activation '{activation.name}' has no ONNX"):
            build_onnx(model)
    # from a run directory, as dnn export meets it: nothing is written
    monkeypatch.delitem(export_activations.ACTIVATIONS, activations.Tanh)
    with pytest.raises(DnnError, match=r"layer 3 \('dense_1'\): activation 'tanh'"):
        export_onnx(classifier_run, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_without_onnx_the_error_says_how_to_install_it(classifier_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(DnnError, match=r"pip install '\.\[export\]'.*pip install onnx"):
        export_onnx(classifier_run, tmp_path / "m.onnx")


# the command ----------------------------------------------------------------------------------------------------
def cli(*args):
    from typer.testing import CliRunner

    from dnncli.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_dnn_export_then_onnxruntime_equals_dnn_predict_on_a_shipped_table(tmp_path):
    """End to end as a user runs it: train the shipped regression, export, and compare with dnn predict's CSV."""
    root = Path(__file__).resolve().parents[1]
    run_dir = tmp_path / "run"
    assert cli("train", root / "configs" / "auto_mpg.yaml", "--epochs", 2, "--quiet", "--out", run_dir).exit_code == 0
    r = cli("export", run_dir, "--out", tmp_path / "mpg.onnx")
    assert r.exit_code == 0, r.output
    assert f"Wrote {tmp_path / 'mpg.onnx'} (ONNX, opset {OPSET})" in r.output
    assert "target scaling undone" not in r.output  # auto_mpg trains on raw mpg
    x = np.random.default_rng(0).normal(size=(7, 9)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert cli("predict", run_dir, tmp_path / "x.npy", "--out", tmp_path / "p.csv").exit_code == 0
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    want = np.array([float(r["y_0"]) for r in rows])
    got = run_onnx(tmp_path / "mpg.onnx", x)["values"][:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_dnn_export_refuses_an_existing_file_and_an_unknown_format_with_exit_2(classifier_run, tmp_path):
    out = tmp_path / "m.onnx"
    assert cli("export", classifier_run, "--out", out).exit_code == 0
    before = out.read_bytes()
    r = cli("export", classifier_run, "--out", out)
    assert r.exit_code == 2 and "exists already" in r.output and "--force" in r.output
    assert out.read_bytes() == before
    r = cli("export", classifier_run, "--format", "tflite")
    assert r.exit_code == 2 and "--format tflite" in r.output
    r = cli("export", classifier_run, "--out", out, "--force", "--json")
    assert r.exit_code == 0
    report = json.loads(r.output)
    assert report["opset"] == OPSET and [o["name"] for o in report["outputs"]] == ["probabilities", "class"]
    assert report["input"] == {"name": "input", "dtype": "float32", "shape": [None, 4]}
