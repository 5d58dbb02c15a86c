import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dnncli.errors import DnnError
from dnncli.nn import activations
from tests.conftest import numeric_grad, rel_error

ALL = [
    "linear",
    "relu",
    "leaky_relu",
    {"name": "leaky_relu", "negative_slope": 0.05},
    "sigmoid",
    "tanh",
    "softmax",
    "elu",
    {"name": "elu", "alpha": 0.5},
    "selu",
    "gelu",
    {"name": "gelu", "approximate": True},
    "softplus",
    "swish",
]


@pytest.mark.parametrize("spec", ALL, ids=str)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 2)])
def test_backward_matches_central_differences(spec, shape, rng):
    act = activations.get(spec)
    Z = rng.normal(0, 2, shape)
    Z[np.abs(Z) < 1e-3] += 0.01  # keep off the kinks of relu-like functions
    W = rng.normal(size=shape)  # a random linear read-out makes the scalar to differentiate

    def f():
        return float((act.forward(Z.copy()) * W).sum())

    A = act.forward(Z.copy(), np.empty_like(Z))
    analytic = act.backward(Z, A, W.copy(), np.empty_like(Z))
    assert rel_error(analytic, numeric_grad(f, Z)) < 1e-6


@pytest.mark.parametrize("spec", ALL, ids=str)
def test_in_place_forward_and_backward_agree_with_out_of_place(spec, rng):
    act = activations.get(spec)
    Z = rng.normal(size=(4, 6)).astype(np.float32)
    A = act.forward(Z, np.empty_like(Z))
    assert A.dtype == np.float32
    if not act.needs_input:
        Zc = Z.copy()
        act.forward(Zc, out=Zc)
        np.testing.assert_array_equal(Zc, A)
    dA = rng.normal(size=Z.shape).astype(np.float32)
    dZ = act.backward(Z, A, dA, np.empty_like(Z))
    assert dZ.dtype == np.float32
    dA2 = dA.copy()
    act.backward(Z, A, dA2, out=dA2)
    np.testing.assert_allclose(dA2, dZ, rtol=1e-6)


def test_reference_values():
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(activations.get("relu")(z), [[0, 0, 0, 0.5, 3]])
    np.testing.assert_allclose(activations.get("leaky_relu")(z), [[-0.4, -0.1, 0, 0.5, 3]])
    np.testing.assert_allclose(activations.get("sigmoid")(z), 1 / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(activations.get("elu")(z), np.where(z > 0, z, np.expm1(z)))
    selu = 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * np.expm1(z))
    np.testing.assert_allclose(activations.get("selu")(z), selu, rtol=1e-12)
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(activations.get("gelu")(z), z * (1 + erf(z / math.sqrt(2))) / 2, rtol=1e-12)
    np.testing.assert_allclose(activations.get("softplus")(z), np.log1p(np.exp(z)), rtol=1e-12)
    np.testing.assert_allclose(activations.get("swish")(z), z / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(activations.get("silu")(z), z / (1 + np.exp(-z)), rtol=1e-12)


def test_erf_is_double_precision():
    x = np.linspace(-8, 8, 20001)
    want = np.vectorize(math.erf)(x)
    assert np.abs(activations._erf(x) - want).max() < 1e-12


def test_extreme_inputs_stay_finite():
    z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=np.float32)
    for name in activations.ACTIVATIONS:
        out = activations.get(name)(z)
        assert np.isfinite(out).all(), name


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=st.floats(-500, 500)))
def test_softmax_rows_sum_to_one(z):
    p = activations.get("softmax")(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert (p >= 0).all() and p.shape == z.shape


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.floats(-50, 50, width=32)))
def test_shapes_and_dtype_are_preserved(z):
    for name in activations.ACTIVATIONS:
        out = activations.get(name)(z)
        assert out.shape == z.shape and out.dtype == np.float32, name


def test_unknown_names_and_arguments_are_rejected_with_a_suggestion():
    with pytest.raises(DnnError, match="Did you mean 'sigmoid'"):
        activations.get("sigmoud")
    with pytest.raises(DnnError, match="has no argument 'slope'"):
        activations.get({"name": "leaky_relu", "slope": 0.1})
    with pytest.raises(DnnError, match=r"negative_slope must be a finite number in \[0.0, 1.0\]. Received: -1"):
        activations.get({"name": "leaky_relu", "negative_slope": -1})


def test_softplus_gradient_does_not_cancel_far_below_zero():
    # review defect: 1 - exp(-A) is exactly 0 in float32 at z = -20, where the true gradient is 2.06e-9
    from dnncli.nn.activations import get

    act = get("softplus")
    Z = np.array([[-20.0, -30.0, 0.0, 20.0]], dtype=np.float32)
    A = act.forward(Z.copy())
    dZ = act.backward(Z, A, np.ones_like(Z))
    expected = 1.0 / (1.0 + np.exp(-Z.astype(np.float64)))
    np.testing.assert_allclose(dZ, expected, rtol=1e-3)
    assert dZ.dtype == np.float32 and dZ[0, 0] > 0
