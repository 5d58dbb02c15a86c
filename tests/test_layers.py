"""Every layer's backward pass against central differences in float64, alone and in stacks."""

import numpy as np
import pytest

import dnncli
from dnncli.diagnostics import gradcheck
from dnncli.errors import DnnError
from dnncli.nn import layers, losses
from tests.conftest import numeric_grad, rel_error

ACTS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "softplus", "swish"]


def _build(spec, in_shape, seed=0):
    return dnncli.Sequential([spec], in_shape, dtype="float64", seed=seed)


def _check_layer(layer, X, rng, training=True):
    """dX and every parameter gradient of one layer, with L = sum(W_out * forward(X))."""
    out = layer.forward(X, training)
    R = rng.normal(size=out.shape)
    gens = layer.generators()
    states = {k: g.bit_generator.state for k, g in gens.items()}

    def f():
        for k, g in gens.items():
            g.bit_generator.state = states[k]
        return float((layer.forward(X, training) * R).sum())

    f()  # re-draw the same dropout mask as the analytic pass uses
    layer.needs_input_grad = True
    dX = layer.backward(R.copy())
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert rel_error(dX, numeric_grad(f, X)) < 1e-6
    for name, g in grads.items():
        assert rel_error(g, numeric_grad(f, layer.params[name])) < 1e-6, name


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("trial", range(3))
def test_dense_gradients(activation, trial):
    rng = np.random.default_rng(trial)
    n, fan_in, units = rng.integers(1, 6), rng.integers(1, 6), rng.integers(1, 6)
    model = _build({"type": "dense", "units": int(units), "activation": activation}, [int(fan_in)], trial)
    model.layers[0].params["bias"][...] = rng.normal(size=units)
    _check_layer(model.layers[0], rng.normal(size=(n, fan_in)), rng)


def test_dense_one_sample_kernel_gradient_is_the_outer_product():
    # stochastic mode writes dW as a broadcast product, not a matrix product: same numbers, float32 kept
    rng = np.random.default_rng(3)
    model = _build({"type": "dense", "units": 4, "activation": "relu"}, [6])
    model.layers[0].params["bias"][...] = rng.normal(size=4)
    _check_layer(model.layers[0], rng.normal(size=(1, 6)), rng)
    X, dZ = rng.random((1, 300), dtype=np.float32), rng.random((1, 100), dtype=np.float32)
    out = np.empty((300, 100), np.float32)
    assert layers.kernel_gradient(X, dZ, out) is out
    np.testing.assert_allclose(out, X.T @ dZ, rtol=1e-6)


def test_dense_without_bias():
    rng = np.random.default_rng(0)
    model = _build({"type": "dense", "units": 3, "use_bias": False, "activation": "tanh"}, [4])
    assert list(model.layers[0].params) == ["kernel"]
    _check_layer(model.layers[0], rng.normal(size=(5, 4)), rng)


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("n", [2, 7])
def test_batch_normalization_gradients_training(center, scale, n):
    rng = np.random.default_rng(n)
    model = _build({"type": "batch_normalization", "center": center, "scale": scale}, [4])
    layer = model.layers[0]
    for k in layer.grads:
        layer.params[k][...] = rng.normal(size=4)
    _check_layer(layer, rng.normal(1.0, 2.0, size=(n, 4)), rng)


def test_batch_normalization_inference_gradients_and_statistics():
    rng = np.random.default_rng(5)
    model = _build({"type": "batch_normalization"}, [3])
    layer = model.layers[0]
    X = rng.normal(2.0, 3.0, size=(50, 3))
    Y = layer.forward(X, training=True).copy()
    # training output is normalized by the biased batch variance
    np.testing.assert_allclose(Y, (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-3), rtol=1e-10)
    np.testing.assert_allclose(layer.params["moving_mean"], 0.01 * X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(layer.params["moving_variance"], 0.99 + 0.01 * X.var(0), rtol=1e-12)
    layer.params["moving_mean"][...] = [1.0, -1.0, 0.5]
    layer.params["moving_variance"][...] = [4.0, 0.25, 1.0]
    out = layer.forward(X, training=False)
    np.testing.assert_allclose(out, (X - [1.0, -1.0, 0.5]) / np.sqrt(np.array([4.0, 0.25, 1.0]) + 1e-3))
    _check_layer(layer, X[:4].copy(), rng, training=False)


def test_dropout_gradients_scaling_and_inference():
    rng = np.random.default_rng(7)
    model = _build({"type": "dropout", "rate": 0.4, "seed": 3}, [6])
    layer = model.layers[0]
    _check_layer(layer, rng.normal(size=(5, 6)), rng)
    X = np.ones((2000, 50))
    Y = layer.forward(X, training=True)
    kept = Y != 0
    np.testing.assert_allclose(Y[kept], 1 / 0.6)
    assert abs(kept.mean() - 0.6) < 0.01
    assert layer.forward(X, training=False) is X


def test_dropout_keeps_the_expected_sum():
    model = _build({"type": "dropout", "rate": 0.3, "seed": 11}, [1000])
    X = np.random.default_rng(0).uniform(0, 1, size=(200, 1000))
    Y = model.layers[0].forward(X, training=True)
    assert Y.sum() == pytest.approx(X.sum(), rel=0.01)


def test_flatten_and_activation_layer_gradients():
    rng = np.random.default_rng(3)
    model = dnncli.Sequential([{"type": "flatten"}], [2, 3], dtype="float64")
    _check_layer(model.layers[0], rng.normal(size=(4, 2, 3)), rng)
    for act in ACTS:
        m = _build({"type": "activation", "activation": act}, [5])
        _check_layer(m.layers[0], rng.normal(size=(3, 5)), rng)


STACKS = [
    # (layers, input_shape, loss)
    (
        [
            {"type": "dense", "units": 4, "activation": "relu"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        [3],
        "categorical_crossentropy",
    ),
    (
        [
            {"type": "flatten"},
            {"type": "batch_normalization"},
            {"type": "dense", "units": 6, "activation": "relu", "kernel_initializer": "he_normal"},
            {"type": "batch_normalization"},
            {"type": "dropout", "rate": 0.3},
            {"type": "dense", "units": 5, "activation": "tanh", "kernel_regularizer": {"name": "l2", "l2": 0.01}},
            {"type": "dense", "units": 3, "activation": "softmax", "bias_regularizer": "l1"},
        ],
        [2, 3],
        "sparse_categorical_crossentropy",
    ),
    (
        [
            {"type": "dense", "units": 5, "activation": "sigmoid", "kernel_regularizer": "l1"},
            {
                "type": "dense",
                "units": 4,
                "activation": "elu",
                "kernel_regularizer": {"name": "l1_l2", "l1": 0.01, "l2": 0.02},
            },
            {"type": "dense", "units": 2, "activation": "sigmoid"},
        ],
        [3],
        "binary_crossentropy",
    ),
    (
        [{"type": "dense", "units": 4, "activation": "swish"}, {"type": "dense", "units": 2}],
        [3],
        {"name": "categorical_crossentropy", "from_logits": True},
    ),
    (
        [
            {"type": "dense", "units": 4, "activation": "gelu"},
            {"type": "dense", "units": 3},
            {"type": "activation", "activation": "softmax"},
        ],
        [3],
        "categorical_crossentropy",
    ),
    ([{"type": "dense", "units": 4, "activation": "leaky_relu"}, {"type": "dense", "units": 2}], [3], "mse"),
    ([{"type": "dense", "units": 4, "activation": "selu"}, {"type": "dense", "units": 1}], [3], "mae"),
    (
        [{"type": "dense", "units": 4, "activation": "tanh"}, {"type": "dense", "units": 2, "activation": "softplus"}],
        [3],
        "msle",
    ),
    (
        [{"type": "dense", "units": 4, "activation": "relu"}, {"type": "dense", "units": 3, "activation": "sigmoid"}],
        [3],
        "categorical_crossentropy",  # unfused: the softmax-free probability path
    ),
]


def _targets(loss, rng, n, k):
    name = losses.get(loss).name
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, k, n)
    if name == "categorical_crossentropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if name == "binary_crossentropy":
        return rng.integers(0, 2, (n, k))
    return rng.uniform(0.1, 2, (n, k))


@pytest.mark.parametrize(
    "stack", STACKS, ids=lambda s: "-".join(str(layer.get("activation", layer["type"])) for layer in s[0])
)
@pytest.mark.parametrize("n", [1, 5])
def test_model_gradients_in_stacks(stack, n):
    spec, in_shape, loss = stack
    rng = np.random.default_rng(n)
    model = dnncli.Sequential(spec, in_shape, dtype="float64", seed=n)
    for w in model.trainable_weights:  # non-trivial biases and batch-norm parameters
        if w.ndim == 1:
            w += rng.normal(0, 0.1, size=w.shape)
    k = model.output_shape[0]
    loss = losses.get(loss)
    x = rng.normal(size=(n, *in_shape))
    y = loss.prepare_targets(_targets(loss, rng, n, k), k, np.float64)
    rows = gradcheck.check_model(model, x, y, loss)
    assert rows and all(r.max_rel_error < 1e-6 for r in rows), rows


def test_layer_errors_name_the_key_and_echo_the_value():
    with pytest.raises(DnnError, match=r"dense.units must be a positive integer. Received: 0") as e:
        layers.get({"type": "dense", "units": 0})
    assert e.value.key == ("units",)
    with pytest.raises(DnnError, match=r"Unknown layer 'dens'. Did you mean 'dense'\?"):
        layers.get({"type": "dens", "units": 3})
    with pytest.raises(DnnError, match=r"layer 'dense' has no argument 'unit'. Did you mean 'units'\?"):
        layers.get({"type": "dense", "unit": 3})
    with pytest.raises(DnnError, match=r"dropout.rate must be a finite number in \[0.0, 1.0\). Received: 1"):
        layers.get({"type": "dropout", "rate": 1})
    with pytest.raises(DnnError, match="needs 'units'"):
        layers.get({"type": "dense"})
    with pytest.raises(DnnError, match="put a flatten layer before it") as e:
        dnncli.Sequential([{"type": "dense", "units": 3}], [28, 28])
    assert e.value.key == ("layers", 0)
