import numpy as np
import pytest

import dnncli
from dnncli.errors import DnnError
from dnncli.experiment.weights import load_weights, save_weights
from dnncli.nn import losses
from dnncli.train.trainer import Trainer

FASHION = {
    "input_shape": [28, 28],
    "layers": [
        {"type": "flatten"},
        {"type": "batch_normalization"},
        {"type": "dense", "units": 300, "activation": "relu"},
        {"type": "batch_normalization"},
        {"type": "dense", "units": 100, "activation": "relu"},
        {"type": "batch_normalization"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ],
}


def _mlp(*units, inputs=3, out_act="softmax"):
    layers = [{"type": "dense", "units": u, "activation": "relu"} for u in units[:-1]]
    layers.append({"type": "dense", "units": units[-1], "activation": out_act})
    return {"input_shape": [inputs], "layers": layers}


def test_parameter_counts_of_the_course_examples():
    assert dnncli.build_model(_mlp(4, 2)).count_params() == 26
    assert dnncli.build_model(_mlp(4, 4, 1, out_act="sigmoid")).count_params() == 41
    # module 3: Dense(64, input_shape=(10,)), Dense(128), Dense(64), Dense(1): Keras counts 17,345
    assert dnncli.build_model(_mlp(64, 128, 64, 1, inputs=10, out_act="sigmoid")).count_params() == 17345


def test_fashion_network_counts_as_keras():
    s = dnncli.build_model(FASHION).summary()
    # keras: flatten 0, bn 3136, dense 235500, bn 1200, dense 30100, bn 400, dense 1010
    assert [r.params for r in s.rows] == [0, 3136, 235500, 1200, 30100, 400, 1010]
    assert (s.total, s.trainable, s.non_trainable) == (271346, 268978, 2368)
    assert [r.name for r in s.rows][:4] == ["flatten", "batch_normalization", "dense", "batch_normalization_1"]
    assert s.rows[2].output_shape == (None, 300)


def test_weights_order_and_npz_round_trip(tmp_path):
    model = dnncli.build_model(FASHION | {"seed": 1})
    keys = model.weight_keys()
    assert keys[:6] == [
        "layer1.gamma",
        "layer1.beta",
        "layer1.moving_mean",
        "layer1.moving_variance",
        "layer2.kernel",
        "layer2.bias",
    ]
    weights = model.get_weights()
    assert weights[4].shape == (784, 300)  # kernels are (fan_in, units) as in Keras
    path = tmp_path / "w.npz"
    save_weights(model, path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(keys)
    other = dnncli.build_model(FASHION | {"seed": 2})
    load_weights(other, path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).random((5, 28, 28))
    np.testing.assert_array_equal(model.predict(x), other.predict(x))
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary behind


def test_loading_bad_weight_files_names_the_key(tmp_path):
    model = dnncli.build_model(_mlp(4, 2))
    w = model.weights_dict()
    cases = {
        "missing": ({k: v for k, v in w.items() if k != "layer1.bias"}, "missing weight 'layer1.bias'"),
        "extra": (w | {"layer2.kernel": np.zeros(1)}, "unexpected weight 'layer2.kernel'"),
        "shape": (w | {"layer0.kernel": np.zeros((4, 3))}, r"'layer0.kernel' must have shape \(3, 4\)"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(DnnError, match=message):
            load_weights(model, tmp_path / f"{name}.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DnnError, match="not a readable NPZ"):
        load_weights(model, tmp_path / "junk.npz")
    with pytest.raises(DnnError, match="no such weights file"):
        load_weights(model, tmp_path / "nope.npz")


def test_object_arrays_are_refused(tmp_path):
    model = dnncli.build_model(_mlp(4, 2))
    w = model.weights_dict()
    w["layer0.kernel"] = np.array([[object()] * 4] * 3, dtype=object)
    np.savez(tmp_path / "pickled.npz", **w)
    with pytest.raises(DnnError, match="not a readable NPZ"):
        load_weights(model, tmp_path / "pickled.npz")


def test_build_model_from_yaml_path_and_errors(tmp_path):
    cfg = tmp_path / "model.yaml"
    cfg.write_text("seed: 3\nmodel:\n  input_shape: [3]\n  layers:\n    - {type: dense, units: 4, activation: relu}\n")
    model = dnncli.build_model(cfg)
    assert model.count_params() == 16 and model.seed == 3
    with pytest.raises(DnnError, match=r"model has no key 'layer'\. Did you mean 'layers'") as e:
        dnncli.build_model({"input_shape": [3], "layer": []})
    assert e.value.key == ("layer",)
    with pytest.raises(DnnError, match=r"input_shape\[1\] must be a positive integer. Received: -2") as e:
        dnncli.build_model({"input_shape": [3, -2], "layers": [{"type": "flatten"}]})
    assert e.value.key == ("input_shape", 1)
    with pytest.raises(DnnError, match="dtype must be one of float32, float64"):
        dnncli.build_model({"input_shape": [3], "layers": [{"type": "flatten"}], "dtype": "float16"})


def _spiral(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 3 * np.pi, n)
    label = rng.integers(0, 2, n)
    r = t / (3 * np.pi)
    x = np.stack([r * np.cos(t + np.pi * label), r * np.sin(t + np.pi * label)], 1)
    return x + rng.normal(0, 0.02, x.shape), label


def _train(seed, dtype="float32", epochs=5):
    spec = {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 32, "activation": "relu", "kernel_regularizer": "l2"},
            {"type": "batch_normalization"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    }
    model = dnncli.build_model(spec, dtype=dtype, seed=seed)
    trainer = Trainer(model, "sparse_categorical_crossentropy", {"name": "adam", "learning_rate": 0.01}, 16, True, seed)
    x, y = _spiral()
    history = trainer.fit(x, y, epochs=epochs)
    return model, history


def test_training_is_bit_identical_for_one_seed():
    a, ha = _train(7)
    b, hb = _train(7)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert ha == hb
    c, _ = _train(8)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_training_lowers_the_loss_and_reports_penalty_separately():
    _, history = _train(1, epochs=15)
    assert history[-1]["loss"] < 0.75 * history[0]["loss"]
    assert all(h["penalty"] > 0 and h["loss"] == pytest.approx(h["data_loss"] + h["penalty"]) for h in history)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_silent_upcast(dtype):
    model = dnncli.build_model(FASHION, dtype=dtype, seed=0)
    x = np.random.default_rng(0).random((8, 28, 28)).astype(dtype)
    loss = losses.get("sparse_categorical_crossentropy")
    y = loss.prepare_targets(np.arange(8), 10, model.dtype)
    model.compute_gradients(x, y, loss)
    assert model.flat_gradients.dtype == dtype
    for layer in model.layers:
        for buf in layer._buffers.values():
            assert buf.dtype == dtype, layer.name
        for p in layer.params.values():
            assert p.dtype == dtype
    assert model.predict(x).dtype == dtype


def test_compute_gradients_returns_views_of_the_flat_gradient():
    model = dnncli.build_model(_mlp(4, 2), seed=0)
    loss, grads = model.compute_gradients(
        np.ones((2, 3), np.float32), np.eye(2, dtype=np.float32), "categorical_crossentropy"
    )
    assert isinstance(loss, dnncli.BatchLoss) and loss.penalty == 0.0
    assert [g.shape for g in grads] == [(3, 4), (4,), (4, 2), (2,)]
    assert all(np.shares_memory(g, model.flat_gradients) for g in grads)


def test_initialization_depends_on_seed_only():
    a = dnncli.build_model(_mlp(4, 2) | {"seed": 5}).get_weights()
    b = dnncli.build_model(_mlp(4, 2) | {"seed": 5}).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    longer = dnncli.build_model(
        {"input_shape": [3], "seed": 5, "layers": _mlp(4, 2)["layers"] + [{"type": "dense", "units": 3}]}
    ).get_weights()
    for wa, wl in zip(a, longer[: len(a)]):  # adding a layer leaves the earlier ones' weights unchanged
        np.testing.assert_array_equal(wa, wl)
    other = dnncli.build_model(_mlp(4, 2) | {"seed": 6}).get_weights()
    assert not np.array_equal(a[0], other[0])
