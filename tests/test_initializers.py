import math

import numpy as np
import pytest

from dnncli.errors import DnnError
from dnncli.nn import initializers, regularizers
from tests.conftest import numeric_grad, rel_error

SHAPE = (400, 300)  # fan_in 400, fan_out 300: 120,000 samples, tight statistics


@pytest.mark.parametrize(
    "name,variance,truncated",
    [
        ("glorot_normal", 2 / 700, True),
        ("glorot_uniform", 2 / 700, False),
        ("he_normal", 2 / 400, True),
        ("he_uniform", 2 / 400, False),
        ("lecun_normal", 1 / 400, True),
        ("lecun_uniform", 1 / 400, False),
    ],
)
def test_variance_scaling_family(name, variance, truncated):
    w = initializers.get(name)(SHAPE, "float64", np.random.default_rng(0))
    assert w.var() == pytest.approx(variance, rel=0.02)
    assert abs(w.mean()) < 0.01 * math.sqrt(variance) * 10
    if truncated:
        stddev = math.sqrt(variance) / initializers.TRUNCATED_STDDEV
        assert np.abs(w).max() <= 2 * stddev  # redrawn beyond two standard deviations
    else:
        limit = math.sqrt(3 * variance)  # glorot_uniform: sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit


def test_random_normal_uniform_constant_defaults():
    rng = np.random.default_rng(1)
    w = initializers.get("random_normal")(SHAPE, "float64", rng)
    assert w.std() == pytest.approx(0.05, rel=0.02)
    u = initializers.get("random_uniform")(SHAPE, "float64", rng)
    assert u.min() >= -0.05 and u.max() <= 0.05 and u.max() > 0.0499
    u = initializers.get({"name": "random_uniform", "minval": -0.5, "maxval": 0.5})(SHAPE, "float64", rng)
    assert u.min() >= -0.5 and u.max() > 0.49
    n = initializers.get({"name": "random_normal", "mean": 1.0, "stddev": 0.1})(SHAPE, "float64", rng)
    assert n.mean() == pytest.approx(1.0, abs=0.001)
    assert (initializers.get({"name": "constant", "value": 0.3})((2, 2), "float32") == np.float32(0.3)).all()
    assert (initializers.get("ones")((3,)) == 1).all() and (initializers.get("zeros")((3,)) == 0).all()


def test_dtype_and_seed():
    a = initializers.get({"name": "he_normal", "seed": 5})((3, 4), "float32", np.random.default_rng(0))
    b = initializers.get({"name": "he_normal", "seed": 5})((3, 4), "float32", np.random.default_rng(99))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # an explicit seed ignores the model's generator
    c = initializers.get("he_normal")((3, 4), "float32", np.random.default_rng(0))
    d = initializers.get("he_normal")((3, 4), "float32", np.random.default_rng(0))
    np.testing.assert_array_equal(c, d)


def test_compute_fans_as_keras():
    assert initializers.compute_fans((5, 7)) == (5, 7)
    assert initializers.compute_fans((6,)) == (6, 6)
    assert initializers.compute_fans(()) == (1, 1)
    assert initializers.compute_fans((3, 3, 4, 8)) == (36, 72)


def test_initializer_errors():
    with pytest.raises(DnnError, match="Did you mean 'he_normal'"):
        initializers.get("he_norml")
    with pytest.raises(DnnError, match=r"random_normal.stddev must be a finite number >= 0.0. Received: -1"):
        initializers.get({"name": "random_normal", "stddev": -1})


@pytest.mark.parametrize(
    "spec,value",
    [
        ("l1", 0.01 * 6.0),
        ("l2", 0.01 * 14.0),
        ({"name": "l1", "l1": 0.5}, 0.5 * 6.0),
        ({"name": "l1_l2", "l1": 0.1, "l2": 0.2}, 0.1 * 6 + 0.2 * 14),
        ({"name": "l1l2", "l2": 1.0}, 14.0),
        ("l1_l2", 0.0),  # Keras 3's L1L2 defaults to 0.0 and 0.0
    ],
)
def test_regularizer_penalties_as_keras(spec, value):
    W = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert regularizers.get(spec).penalty(W) == pytest.approx(value)


@pytest.mark.parametrize("spec", ["l1", "l2", {"name": "l1_l2", "l1": 0.3, "l2": 0.7}])
def test_regularizer_gradients(spec, rng):
    reg = regularizers.get(spec)
    W = rng.normal(size=(4, 3))
    g = np.zeros_like(W)
    reg.add_gradient(W, g)
    assert rel_error(g, numeric_grad(lambda: reg.penalty(W), W)) < 1e-6


def test_regularizer_errors():
    with pytest.raises(DnnError, match=r"l2.l2 must be a finite number >= 0.0. Received: -0.1"):
        regularizers.get({"name": "l2", "l2": -0.1})
    with pytest.raises(DnnError, match="Did you mean 'l2'"):
        regularizers.get("L2x")
