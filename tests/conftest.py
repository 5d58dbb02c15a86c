import numpy as np
import pytest


def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar function ``f`` at every entry of ``x`` (modified in place, restored)."""
    grad = np.empty_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return grad


def rel_error(a, n):
    """max|a - n| relative to the larger gradient scale (floored above rounding noise)."""
    scale = max(np.abs(a).max(initial=0), np.abs(n).max(initial=0), 1e-7)
    return np.abs(a - n).max(initial=0) / scale


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
