import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnncli.errors import DnnError
from dnncli.nn import activations, losses
from tests.conftest import numeric_grad, rel_error


def _targets(name, rng, n, k):
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, k, n)
    if name == "categorical_crossentropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if name == "binary_crossentropy":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.uniform(0.1, 3.0, (n, k))


def _outputs(name, rng, n, k):
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        return activations.softmax(rng.normal(size=(n, k)))
    if name == "binary_crossentropy":
        return rng.uniform(0.05, 0.95, (n, k))
    return rng.uniform(0.1, 3.0, (n, k))


@pytest.mark.parametrize("name", list(losses.LOSSES))
@pytest.mark.parametrize("n,k", [(1, 2), (5, 3), (8, 1)])
def test_backward_matches_central_differences(name, n, k, rng):
    if name == "categorical_crossentropy" and k == 1:
        pytest.skip("one-class softmax")
    loss = losses.get(name)
    y = loss.prepare_targets(_targets(name, rng, n, k), k, np.float64)
    p = _outputs(name, rng, n, k)
    analytic = loss.backward(y, p)
    assert rel_error(analytic, numeric_grad(lambda: loss.forward(y, p), p)) < 1e-6


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"])
@pytest.mark.parametrize("n,k", [(1, 2), (6, 4)])
def test_logits_gradients_match_central_differences(name, n, k, rng):
    act = activations.get("sigmoid" if name == "binary_crossentropy" else "softmax")
    fused = losses.get(name)
    y = fused.prepare_targets(_targets(name, rng, n, k), k, np.float64)
    Z = rng.normal(0, 3, (n, k))
    dZ = fused.logits_backward(y, Z, act(Z))
    assert rel_error(dZ, numeric_grad(lambda: fused.logits_forward(y, Z), Z)) < 1e-6
    # from_logits=True on a linear output is the same function of Z
    from_logits = losses.get({"name": name, "from_logits": True})
    assert from_logits.forward(y, Z) == pytest.approx(fused.logits_forward(y, Z), rel=1e-12)
    np.testing.assert_allclose(from_logits.backward(y, Z), dZ, rtol=1e-10)
    # and the logits value equals the clipped-probability value where no clipping happens
    assert fused.forward(y, act(Z)) == pytest.approx(fused.logits_forward(y, Z), rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_loss_from_the_fused_probabilities_equals_the_logits_path(dtype, rng):
    loss = losses.get("sparse_categorical_crossentropy")
    y = rng.integers(0, 5, 64)
    Z = rng.normal(0, 4, (64, 5)).astype(dtype)
    A = activations.get("softmax")(Z)
    assert loss.logits_forward(y, Z, A) == pytest.approx(
        loss.logits_forward(y, Z), rel=1e-5 if dtype == np.float32 else 1e-12
    )
    # a true class whose probability underflows takes the logits path: finite, and the exact value
    Z[0] = 0.0
    Z[0, (y[0] + 1) % 5] = 200.0
    A = activations.get("softmax")(Z)
    assert A[0, y[0]] < 1e-30
    assert loss.logits_forward(y, Z, A) == loss.logits_forward(y, Z)
    assert loss.logits_forward(y[:1], Z[:1], A[:1]) == pytest.approx(200.0, rel=1e-6)


def test_keras_reference_values():
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    p = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    # keras.losses.categorical_crossentropy example: [0.0513, 2.303], mean 1.177
    assert losses.get("categorical_crossentropy")(y, p) == pytest.approx(1.1769392, rel=1e-6)
    assert losses.get("sparse_categorical_crossentropy")(np.array([1, 2]), p) == pytest.approx(1.1769392, rel=1e-6)
    yb = np.array([[0.0, 1.0], [0.0, 0.0]])
    pb = np.array([[0.6, 0.4], [0.4, 0.6]])
    # keras.losses.BinaryCrossentropy docstring example: 0.815
    assert losses.get("binary_crossentropy")(yb, pb) == pytest.approx(0.81492424, rel=1e-6)
    yr = np.array([[0.0, 1.0], [0.0, 0.0]])
    pr = np.array([[1.0, 1.0], [1.0, 0.0]])
    assert losses.get("mse")(yr, pr) == pytest.approx(0.5)
    assert losses.get("mae")(yr, pr) == pytest.approx(0.5)
    # keras.losses.MeanSquaredLogarithmicError docstring example: 0.240
    assert losses.get("msle")(yr, pr) == pytest.approx(0.24022643, rel=1e-6)


def test_several_independent_binary_labels_per_sample():
    loss = losses.get("binary_crossentropy")
    y = loss.prepare_targets(np.array([[1, 0, 1], [0, 0, 1]]), 3, np.float32)
    assert y.shape == (2, 3) and y.dtype == np.float32
    with pytest.raises(DnnError, match=r"targets in \[0, 1\]"):
        loss.prepare_targets(np.array([[0, 2, 1]]), 3, np.float32)


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"])
def test_extreme_inputs_give_no_nan(name, rng):
    loss = losses.get(name)
    y = loss.prepare_targets(_targets(name, rng, 4, 3), 3, np.float32)
    Z = np.array([[1e4, -1e4, 0], [-1e4, 1e4, 0], [0, 0, 1e4], [-88, 88, 0]], dtype=np.float32)
    act = activations.get("sigmoid" if name == "binary_crossentropy" else "softmax")
    A = act(Z)
    for value in (loss.forward(y, A), loss.logits_forward(y, Z), loss.logits_forward(y, Z, A)):
        assert np.isfinite(value)
    for grad in (loss.backward(y, A), loss.logits_backward(y, Z, A)):
        assert np.isfinite(grad).all() and grad.dtype == np.float32
    exact_zero = np.zeros((4, 3), dtype=np.float32)
    assert np.isfinite(loss.forward(y, exact_zero if name == "binary_crossentropy" else exact_zero + [1, 0, 0]))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31))
def test_losses_are_non_negative(n, k, seed):
    rng = np.random.default_rng(seed)
    for name in losses.LOSSES:
        if name == "categorical_crossentropy" and k == 1:
            continue
        loss = losses.get(name)
        y = loss.prepare_targets(_targets(name, rng, n, k), k, np.float64)
        assert loss.forward(y, _outputs(name, rng, n, k)) >= 0.0


def test_aliases_and_errors():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get("mae"), losses.MeanAbsoluteError)
    assert isinstance(losses.get("msle"), losses.MeanSquaredLogarithmicError)
    with pytest.raises(DnnError, match="Did you mean 'binary_crossentropy'"):
        losses.get("binary_crossentropyy")
    with pytest.raises(DnnError, match=r"label 10 is outside the output layer's 10 classes"):
        losses.get("sparse_categorical_crossentropy").prepare_targets(np.arange(11), 10, np.float32)
    with pytest.raises(DnnError, match="use sparse_categorical_crossentropy"):
        losses.get("categorical_crossentropy").prepare_targets(np.array([[3.0, 0.0]]), 2, np.float32)
    with pytest.raises(DnnError, match=r"shape \(samples, 2\)"):
        losses.get("mse").prepare_targets(np.zeros((4, 3)), 2, np.float32)


def test_probabilities_from_logits_use_the_engine_and_never_overflow():
    # review defect: predict had its own sigmoid, 1 / (1 + exp(-z)), which overflows (a warning) at z = -1000
    import warnings

    from dnncli.nn.activations import softmax

    binary = losses.get({"name": "binary_crossentropy", "from_logits": True})
    categorical = losses.get({"name": "sparse_categorical_crossentropy", "from_logits": True})
    z = np.array([[-1000.0], [0.0], [1000.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(binary.probabilities(z), [[0.0], [0.5], [1.0]])
        rows = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], np.float32)
        np.testing.assert_allclose(categorical.probabilities(rows), softmax(rows.copy()))
    assert losses.get("binary_crossentropy").probabilities(z) is z  # probabilities already: unchanged


# sample weights (class_weight) --------------------------------------------------------------------------------------
WEIGHTED = [*losses.LOSSES, "categorical_crossentropy+logits", "sparse_categorical_crossentropy+logits"]
WEIGHTED += ["binary_crossentropy+logits"]


def _weighted_case(spec, rng, n=6, k=3):
    name, _, logits = spec.partition("+")
    loss = losses.get({"name": name, "from_logits": True} if logits else name)
    y = loss.prepare_targets(_targets(name, rng, n, k), k, np.float64)
    p = rng.normal(size=(n, k)) if logits else _outputs(name, rng, n, k)
    return loss, y, p, rng.uniform(0.2, 5.0, n)


@pytest.mark.parametrize("spec", WEIGHTED)
def test_weighted_loss_is_keras_sum_over_batch_size_and_its_gradient_passes_gradcheck(spec, rng):
    loss, y, p, w = _weighted_case(spec, rng)
    # Keras: each sample's loss times its weight, summed, over the batch size (not over the weights' sum)
    each = np.array([loss.forward(y[i : i + 1], p[i : i + 1]) for i in range(len(p))])
    assert loss.forward(y, p, sample_weight=w) == pytest.approx(np.dot(w, each) / len(p), rel=1e-12)
    assert loss.forward(y, p, sample_weight=np.ones(len(p))) == pytest.approx(loss.forward(y, p), rel=1e-12)
    analytic = loss.backward(y, p, sample_weight=w)
    numeric = numeric_grad(lambda: loss.forward(y, p, sample_weight=w), p)
    assert rel_error(analytic, numeric) < 1e-6


@pytest.mark.parametrize("spec", ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"])
def test_weighted_fused_logits_path_passes_gradcheck(spec, rng):
    loss, y, _, w = _weighted_case(spec, rng)
    Z = rng.normal(size=(len(w), 3))
    act = activations.softmax if loss.logits_activation == "softmax" else activations.sigmoid

    def value():
        return loss.logits_forward(y, Z, act(Z.copy()), sample_weight=w)

    analytic = loss.logits_backward(y, Z, act(Z.copy()), sample_weight=w)
    assert rel_error(analytic, numeric_grad(value, Z)) < 1e-6
    assert loss.logits_forward(y, Z, sample_weight=w) == pytest.approx(value(), rel=1e-9)


def test_model_gradients_scale_with_the_sample_weights(rng):
    from dnncli.nn.model import Sequential

    layers = [
        {"type": "dense", "units": 5, "activation": "tanh"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    model = Sequential(layers, [4], dtype="float64", seed=1)
    x, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    loss = losses.get("sparse_categorical_crossentropy")
    plain, grads = model.compute_gradients(x, y, loss)
    plain_grads = [g.copy() for g in grads]
    doubled, grads = model.compute_gradients(x, y, loss, sample_weight=np.full(8, 2.0))
    assert doubled.data == pytest.approx(2 * plain.data, rel=1e-12)
    for a, b in zip(grads, plain_grads):
        np.testing.assert_allclose(a, 2 * b, rtol=1e-12)
    # one sample weighted 0 is as if it were not in the batch, but for the batch size
    w = np.ones(8)
    w[0] = 0.0
    dropped, grads = model.compute_gradients(x, y, loss, sample_weight=w)
    kernel = grads[0].copy()  # the gradients are views of one buffer, which the next call overwrites
    rest, rest_grads = model.compute_gradients(x[1:], y[1:], loss)
    assert dropped.data == pytest.approx(rest.data * 7 / 8, rel=1e-12)
    np.testing.assert_allclose(kernel, rest_grads[0] * 7 / 8, rtol=1e-10)
