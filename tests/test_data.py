"""Data sources, preparation and every bad-data case, each with a small broken file made here."""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli import data
from dnncli.cli.app import app
from dnncli.errors import DnnError


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C}
    a = array.astype(">i4" if array.dtype.kind == "i" and array.dtype.itemsize > 1 else array.dtype.newbyteorder(">"))
    header = bytes([0, 0, codes.get(a.dtype, 0x08), a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + a.tobytes()


def make_idx_dir(path: Path, n_train=60, n_test=20, gz=True, size=4):
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size)).astype(np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 3).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 3).astype(np.uint8),
    }
    for name, arr in files.items():
        raw = idx_bytes(arr)
        if gz:
            (path / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (path / name).write_bytes(raw)
    return path


def idx_config(tmp_path, directory, **data_extra):
    cfg = {
        "name": "tiny_idx",
        "data": {"source": "idx", "path": str(directory), "scale": 255, **data_extra},
        "model": {
            "input_shape": [4, 4],
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 3, "activation": "softmax"}],
        },
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "training": {"epochs": 1},
    }
    path = tmp_path / "idx.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def csv_config(tmp_path, csv_path, n_features=2, loss="binary_crossentropy", units=1, **data_extra):
    cfg = {
        "name": "tiny_csv",
        "data": {"source": "csv", "path": str(csv_path), "target": "label", **data_extra},
        "model": {
            "input_shape": [n_features],
            "layers": [{"type": "dense", "units": units, "activation": "sigmoid" if units == 1 else "softmax"}],
        },
        "loss": loss,
        "training": {"epochs": 1},
    }
    path = tmp_path / "csv.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# synthetic --------------------------------------------------------------------------------------
@pytest.mark.parametrize("generator", ["spirals", "moons", "circles", "xor", "blobs", "regression"])
def test_synthetic_generators_are_seeded(generator):
    extra = {"classes": 3} if generator in ("spirals", "blobs") else {}
    spec = data.resolve_spec({"generator": generator, "n_samples": 200, **extra})
    a, b = data.build_source(spec).load(1), data.build_source(spec).load(1)
    c = data.build_source(spec).load(2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert len(a.x_train) + len(a.x_test) == 200 and abs(len(a.x_test) - 40) <= 1 and np.isfinite(a.x_train).all()
    if generator == "regression":
        assert a.classes is None and a.y_train.dtype == np.float64
    else:
        assert a.classes in (2, 3) and set(np.unique(a.y_train)) == set(range(a.classes))


def test_stratified_validation_split_keeps_class_proportions():
    labels = np.array([0] * 900 + [1] * 100)
    rng = np.random.default_rng(0)
    train, held = data.stratified_split(labels, 1000, 0.2, rng)
    assert len(held) == 200 and (labels[held] == 1).sum() == 20
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == 1000


# IDX ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_gz_or_raw(tmp_path, gz):
    d = make_idx_dir(tmp_path / "d", gz=gz)
    ds = data.build_source(data.resolve_spec({"source": "idx", "path": str(d)})).load(0)
    assert ds.x_train.shape == (60, 4, 4) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (20, 4, 4) and ds.classes == 3
    r = run("train", idx_config(tmp_path, d), "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output


def _break(tmp_path, name, mutate):
    d = make_idx_dir(tmp_path / "d")
    f = d / name
    f.write_bytes(mutate(f.read_bytes()))
    return d, f


BAD_IDX = [
    ("truncated gzip", "train-images-idx3-ubyte.gz", lambda b: b[: len(b) // 2], "truncated or corrupt gzip"),
    ("corrupt gzip", "train-images-idx3-ubyte.gz", lambda b: b[:20] + bytes(len(b) - 20), "truncated or corrupt gzip"),
    (
        "header does not match size",
        "train-images-idx3-ubyte.gz",
        lambda b: gzip.compress(gzip.decompress(b)[:-5]),
        r"declares shape \[60, 4, 4\] \(976 bytes\), but the file holds 971",
    ),
    (
        "bad magic",
        "train-labels-idx1-ubyte.gz",
        lambda b: gzip.compress(b"\x01\x02" + gzip.decompress(b)[2:]),
        "not an IDX file",
    ),
    (
        "count mismatch",
        "train-labels-idx1-ubyte.gz",
        lambda b: gzip.compress(idx_bytes(np.zeros(59, np.uint8))),
        "holds 60 images but .* holds 59 labels",
    ),
]


@pytest.mark.parametrize("case,name,mutate,message", BAD_IDX, ids=[c[0] for c in BAD_IDX])
def test_bad_idx_files_are_one_line_naming_the_file(tmp_path, case, name, mutate, message):
    d, _f = _break(tmp_path, name, mutate)
    r = run("train", idx_config(tmp_path, d), "--out", tmp_path / "run")
    assert r.exit_code == 2, r.output
    assert str(d) in r.output and len(r.output.strip().splitlines()) == 1
    import re

    assert re.search(message, r.output), r.output
    assert not (tmp_path / "run").exists()  # nothing written before the data is known good


def test_missing_idx_file_and_directory(tmp_path):
    d = make_idx_dir(tmp_path / "d")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    r = run("train", idx_config(tmp_path, d), "--out", tmp_path / "run")
    assert r.exit_code == 2 and "no t10k-labels-idx1-ubyte.gz" in r.output
    r = run("train", idx_config(tmp_path, tmp_path / "nowhere"), "--out", tmp_path / "run")
    assert r.exit_code == 2 and "no such directory" in r.output


def test_feature_count_must_match_input_shape(tmp_path):
    d = make_idx_dir(tmp_path / "d", size=5)
    r = run("train", idx_config(tmp_path, d), "--out", tmp_path / "run")
    assert r.exit_code == 2 and str(d) in r.output and "input_shape is [4, 4]" in r.output


def test_labels_the_output_layer_cannot_represent(tmp_path):
    d = make_idx_dir(tmp_path / "d")
    cfg = idx_config(tmp_path, d)
    r = run("train", cfg, "--set", "model.layers.1.units=2", "--out", tmp_path / "run")
    assert r.exit_code == 2 and "label 2 is outside the output layer's 2 classes" in r.output
    r = run(
        "train",
        cfg,
        "--set",
        "loss=binary_crossentropy",
        "--set",
        "model.layers.1={type: dense, units: 1, activation: sigmoid}",
        "--set",
        "metrics=[]",
        "--out",
        tmp_path / "run",
    )
    assert r.exit_code == 2 and "needs targets in [0, 1]" in r.output
    r = run(
        "train",
        cfg,
        "--set",
        "loss=categorical_crossentropy",
        "--set",
        "model.layers.1.units=2",
        "--out",
        tmp_path / "run",
    )
    assert r.exit_code == 2 and "outside the output layer's 2 classes" in r.output


# CSV ----------------------------------------------------------------------------------------------
def write_csv(path, text):
    path.write_text(text)
    return path


def test_csv_target_categorical_and_fills_learned_on_training_split(tmp_path):
    train = write_csv(tmp_path / "train.csv", "a,color,b,label\n1,red,10,0\n3,blue,,1\n5,red,30,1\n7,blue,40,0\n")
    test = write_csv(tmp_path / "test.csv", "a,color,b,label\n2,green,,1\n")
    src = data.build_source(
        data.resolve_spec(
            {
                "source": "csv",
                "path": str(train),
                "test_path": str(test),
                "target": "label",
                "categorical": ["color"],
                "missing": "mean",
            }
        )
    )
    ds = src.load(0)
    # columns: a, color=blue, color=red, b; the mean of b is over the training rows only
    assert ds.encoder.feature_names() == ["a", "color=blue", "color=red", "b"]
    np.testing.assert_allclose(ds.x_train[1], [3, 1, 0, (10 + 30 + 40) / 3])
    np.testing.assert_allclose(ds.x_test[0], [2, 0, 0, (10 + 30 + 40) / 3])  # unseen category: all zeros
    assert ds.y_train.tolist() == [0, 1, 1, 0] and ds.y_train.dtype == np.int64
    med = data.build_source(
        data.resolve_spec(
            {
                "source": "csv",
                "path": str(train),
                "test_path": str(test),
                "target": "label",
                "categorical": ["color"],
                "missing": "median",
            }
        )
    ).load(0)
    assert med.x_train[1, 3] == 30.0
    const = data.build_source(
        data.resolve_spec(
            {
                "source": "csv",
                "path": str(train),
                "test_path": str(test),
                "target": "label",
                "categorical": ["color"],
                "missing": "constant",
                "fill_value": -1,
            }
        )
    ).load(0)
    assert const.x_train[1, 3] == -1.0


def test_csv_string_labels_headerless_and_drop(tmp_path):
    f = write_csv(tmp_path / "t.csv", "id1,M,1.0,2.0\nid2,B,3.0,4.0\nid3,M,5.0,6.0\nid4,B,7.0,8.0\nid5,B,1.5,2.5\n")
    spec = data.resolve_spec(
        {
            "source": "csv",
            "path": str(f),
            "header": False,
            "columns": ["id", "dx", "u", "v"],
            "target": "dx",
            "drop": ["id"],
            "test_split": 0.4,
        }
    )
    ds = data.build_source(spec).load(0)
    assert ds.class_names == ["B", "M"] and ds.classes == 2
    assert ds.x_train.shape[1] == 2 and len(ds.x_train) + len(ds.x_test) == 5


BAD_CSV = [
    ("empty file", "", "the file is empty"),
    ("header only", "a,b,label\n", "no data rows"),
    ("ragged row", "a,b,label\n1,2,0\n1,2\n", r"t.csv:3: 2 values, but there are 3 columns"),
    ("not a number", "a,b,label\n1,2,0\n1,x,1\n", r"t.csv:3: column 'b': 'x' is not a number"),
    ("missing value", "a,b,label\n1,2,0\n1,,1\n", r"t.csv:3: column 'b' is missing a value"),
    ("infinity", "a,b,label\n1,2,0\n1,inf,1\n", r"t.csv:3: column 'b' holds 'inf'"),
    ("no target column", "a,b,lab\n1,2,0\n", r"names 'label', which is not a column. Did you mean 'lab'"),
]


@pytest.mark.parametrize("case,text,message", BAD_CSV, ids=[c[0] for c in BAD_CSV])
def test_bad_csv_names_file_row_and_column(tmp_path, case, text, message):
    import re

    f = write_csv(tmp_path / "t.csv", text)
    r = run("train", csv_config(tmp_path, f), "--out", tmp_path / "run")
    assert r.exit_code == 2, r.output
    assert re.search(message, r.output), r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_csv_missing_file_and_feature_count(tmp_path):
    r = run("train", csv_config(tmp_path, tmp_path / "nope.csv"), "--out", tmp_path / "run")
    assert r.exit_code == 2 and "nope.csv: no such file" in r.output
    f = write_csv(tmp_path / "t.csv", "a,b,c,label\n" + "".join(f"{i},{i},{i},{i % 2}\n" for i in range(10)))
    r = run("train", csv_config(tmp_path, f), "--out", tmp_path / "run")
    assert (
        r.exit_code == 2
        and "t.csv" in r.output
        and "samples of shape [3], but the model's input_shape is [2]" in r.output
    )


def test_csv_run_predicts_from_a_csv_with_the_same_encoding(tmp_path):
    rows = "".join(f"{i % 7},{'red' if i % 3 else 'blue'},{i % 2}\n" for i in range(60))
    f = write_csv(tmp_path / "t.csv", "a,color,label\n" + rows)
    cfg = csv_config(tmp_path, f, n_features=3, categorical=["color"], scale="standardize")
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    new = write_csv(tmp_path / "new.csv", "a,color\n3,red\n1,blue\n")
    r = run("predict", tmp_path / "run", new)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "class,p_1" and len(r.output.splitlines()) == 3


# NPZ and NPY -----------------------------------------------------------------------------------------
def test_npz_and_npy_sources(tmp_path, monkeypatch):
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", inputs=x, labels=y)
    ds = data.build_source(
        data.resolve_spec({"source": "npz", "path": str(tmp_path / "d.npz"), "x_key": "inputs", "y_key": "labels"})
    ).load(0)
    assert len(ds.x_train) == 40 and ds.classes == 2
    with pytest.raises(DnnError, match="no array 'x'; it holds inputs, labels"):
        data.build_source(data.resolve_spec({"source": "npz", "path": str(tmp_path / "d.npz")})).load(0)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    from dnncli.data.sources import NpySource

    monkeypatch.setattr(NpySource, "MMAP_BYTES", 100)
    src = data.build_source(
        data.resolve_spec({"source": "npy", "x_path": str(tmp_path / "x.npy"), "y_path": str(tmp_path / "y.npy")})
    )
    (_xp, arr) = src._load(str(tmp_path / "x.npy"))
    assert isinstance(arr, np.memmap)  # large files are memory-mapped, not read
    assert len(src.load(0).x_train) == 40
    np.save(tmp_path / "y_short.npy", y[:-1])
    bad = data.build_source(
        data.resolve_spec({"source": "npy", "x_path": str(tmp_path / "x.npy"), "y_path": str(tmp_path / "y_short.npy")})
    )
    with pytest.raises(DnnError, match="50 inputs but 49 targets"):
        bad.load(0)


def test_nan_in_features_is_an_error_before_training(tmp_path):
    x = np.ones((20, 2))
    x[7, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 2)
    cfg = {
        "data": {"source": "npz", "path": str(tmp_path / "d.npz")},
        "model": {"input_shape": [2], "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "loss": "binary_crossentropy",
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = run("train", tmp_path / "c.yaml", "--out", tmp_path / "run")
    assert r.exit_code == 2 and "d.npz" in r.output and "is nan; inputs must be finite" in r.output


def test_unset_variable_in_a_path_names_the_line(tmp_path, monkeypatch):
    monkeypatch.delenv("DNN_NO_SUCH_VAR", raising=False)
    f = tmp_path / "c.yaml"
    f.write_text(
        "data:\n  source: npz\n  path: $DNN_NO_SUCH_VAR/x.npz\nmodel: {input_shape: [2], layers: [{type: dense, units: 1}]}\nloss: mse\n"
    )
    r = run("validate", f)
    assert r.exit_code == 2 and f"{f}:3: data.path:" in r.output and "$DNN_NO_SUCH_VAR, which is not set" in r.output


# real datasets --------------------------------------------------------------------------------------------
DATASETS = os.environ.get("DNN_DATASETS")
needs_datasets = pytest.mark.skipif(DATASETS is None, reason="DNN_DATASETS is not set")

MD5 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
}


@needs_datasets
@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_real_idx_datasets(name):
    d = Path(DATASETS) / name
    for f, md5 in MD5[name].items():
        assert (d / f).exists(), f"{d / f} is missing although DNN_DATASETS is set"
        assert hashlib.md5((d / f).read_bytes()).hexdigest() == md5, f
    ds = data.build_source(data.resolve_spec({"source": "idx", "path": str(d)})).load(0)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.min() == 0 and ds.y_train.max() == 9 and ds.classes == 10
    assert np.bincount(ds.y_test).min() >= 890


@needs_datasets
@pytest.mark.parametrize(
    "config,n_features,n_rows",
    [("breast_cancer", 30, 569), ("pima_diabetes", 8, 768), ("california_housing", 13, 20640)],
)
def test_real_tables_load_as_their_configs_say(config, n_features, n_rows):
    from dnncli.experiment import config as config_mod

    cfg = config_mod.load(Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml")
    path = data.expand_path(cfg["data"]["path"], None)
    assert path.exists(), f"{path} is missing although DNN_DATASETS is set"
    ds = data.build_source(cfg["data"]).load(0, regression=cfg["loss"]["name"] == "mean_squared_error")
    assert ds.x_train.shape[1] == n_features and len(ds.x_train) + len(ds.x_test) == n_rows
    assert np.isfinite(ds.x_train).all() and np.isfinite(ds.x_test).all()
    if config == "breast_cancer":
        assert ds.class_names == ["B", "M"] and (ds.y_train == 1).sum() + (ds.y_test == 1).sum() == 212
    if config == "california_housing":
        assert (
            ds.classes is None
            and ds.y_train.dtype == np.float64
            and ds.y_train.min() >= 14999
            and ds.y_train.max() <= 500001
        )


# augmentation -------------------------------------------------------------------------------------
def test_augment_shift_flip_and_noise():
    from dnncli.data.augment import Augmenter, _shifted

    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    down_right = _shifted(img, 1, 2)
    np.testing.assert_array_equal(down_right[0, 1:, 2:], img[0, :3, :2])
    assert (down_right[0, 0] == 0).all() and (down_right[0, :, :2] == 0).all()
    x = np.tile(img, (400, 1, 1))
    a, b = x.copy(), x.copy()
    aug = Augmenter(shift=1, horizontal_flip=True)
    aug(a, np.random.default_rng(5))
    aug(b, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)  # seeded
    flipped = (a == img[..., ::-1]).all(axis=(1, 2)).mean()
    unchanged = (a == img).all(axis=(1, 2)).mean()
    assert 0.02 < flipped < 0.2 and 0.02 < unchanged < 0.2  # 1/2 flip x 1/9 no shift
    n = np.zeros((1000, 10), np.float32)
    Augmenter(gaussian_noise=0.5)(n, np.random.default_rng(0))
    assert n.dtype == np.float32 and abs(n.std() - 0.5) < 0.02


def test_augment_needs_images_and_known_keys(tmp_path):
    d = make_idx_dir(tmp_path / "d")
    cfg = idx_config(tmp_path, d)
    r = run("validate", cfg, "--set", "data.augment={shfit: 2}")
    assert r.exit_code == 2 and "Did you mean 'shift'" in r.output
    r = run(
        "train",
        cfg,
        "--set",
        "data.augment={shift: 1, horizontal_flip: true, gaussian_noise: 0.05}",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    flat = tmp_path / "flat.yaml"
    flat.write_text(
        yaml.safe_dump(
            {
                "data": {"source": "synthetic", "augment": {"shift": 1}},
                "model": {"input_shape": [2], "layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
                "loss": "sparse_categorical_crossentropy",
            }
        )
    )
    r = run("train", flat, "--out", tmp_path / "run2")
    assert r.exit_code == 2 and "need image inputs" in r.output


# preprocessing numbers -------------------------------------------------------------------------------
def test_preprocessor_numbers_for_each_method():
    from dnncli.data.preprocess import Preprocessor

    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0], [7.0, 10.0]], np.float32)
    std = Preprocessor.fit("standardize", x)
    np.testing.assert_allclose(std.offset, [4.0, 10.0])
    np.testing.assert_allclose(std.scale, [np.sqrt(5.0), 1.0])  # a constant feature scales by 1, not 0
    np.testing.assert_allclose(std.transform(x, np.float64)[:, 0], (x[:, 0] - 4) / np.sqrt(5))
    mm = Preprocessor.fit("minmax", x)
    np.testing.assert_allclose(mm.transform(x, np.float64)[:, 0], [0, 1 / 3, 2 / 3, 1])
    div = Preprocessor.fit(255, x)
    np.testing.assert_allclose(div.transform(x, np.float64), x / 255)
    np.testing.assert_allclose(std.inverse(std.transform(x, np.float64)), x, rtol=1e-12)


def test_standardize_is_stable_for_a_large_mean():
    # review defect: E[x^2] - E[x]^2 gave a scale of 1.41 for a feature of mean 1e8 and std 0.98
    from dnncli.data.preprocess import Preprocessor

    rng = np.random.default_rng(0)
    x = (1e8 + rng.normal(0, 0.98, size=(10_000, 1))).astype(np.float64)
    p = Preprocessor.fit("standardize", x)
    assert p.scale[0] == pytest.approx(x.std(), rel=1e-9)
    assert p.offset[0] == pytest.approx(x.mean(), rel=1e-15)


def test_scaling_round_trips_as_its_type(tmp_path):
    # review defect: a divisor came back as the string "255.0"
    from dnncli.data.preprocess import Preparation, Preprocessor, Scaling

    x = np.ones((3, 2), np.float32)
    prep = Preparation(Preprocessor.fit(255, x), Preprocessor.fit("standardize", x))
    prep.save(tmp_path / "p.npz")
    back = Preparation.load(tmp_path / "p.npz")
    assert back.inputs.kind == Scaling("divide", 255.0) and back.targets.kind == Scaling("standardize")
    np.testing.assert_array_equal(back.inputs.transform(x, np.float32), x / 255)
    # a run directory written before keeps working: the kind stored as text
    np.savez(
        tmp_path / "old.npz", **{"x.kind": np.array("255.0"), "x.offset": np.zeros(2), "x.scale": np.full(2, 255.0)}
    )
    assert Preparation.load(tmp_path / "old.npz").inputs.kind == Scaling("divide", 255.0)


def test_a_generator_refuses_arguments_it_does_not_take(tmp_path):
    # review defect: moons with classes: 3 and n_features: 7 silently gave 2 classes and 2 features
    with pytest.raises(DnnError, match=r"data.classes does not apply to the moons generator.*Received: classes=3"):
        data.resolve_spec({"generator": "moons", "classes": 3, "n_features": 7})
    with pytest.raises(DnnError, match=r"data\.n_features does not apply to the moons generator"):
        data.resolve_spec({"generator": "moons", "n_features": 7})
    assert data.resolve_spec({"generator": "moons"}) == {
        "source": "synthetic",
        "generator": "moons",
        "n_samples": 1000,
        "noise": 0.1,
        "test_split": None,
        "scale": "none",
        "target_scale": "none",
        "augment": None,
    }
    assert data.resolve_spec({"generator": "blobs", "n_features": 5})["n_features"] == 5
    path = tmp_path / "c.yaml"
    path.write_text(
        "data: {generator: moons, classes: 3}\nmodel: {input_shape: [2], layers: [{type: dense, units: 1}]}\nloss: mse\n"
    )
    r = CliRunner().invoke(app, ["validate", str(path)])
    assert r.exit_code == 2 and f"{path}:1: data.classes: data.classes does not apply" in r.output
