"""The gradient noise scale (McCandlish et al., 2018, "An Empirical Model of Large-Batch Training").

``B_simple = tr(Sigma) / |G|^2``: the trace of the per-sample gradients' covariance over the squared norm of the
true gradient. Batches much smaller than it take noisy steps; much larger ones spend samples for little gain.

Both are estimated from one batch without materializing a per-sample gradient. A dense layer's kernel gradient is
``X.T @ dZ`` (``dZ`` already divided by the batch size ``n``, as the loss averages), so sample ``i``'s own gradient
is ``n x_i dZ_i^T``, whose squared norm is ``n^2 |x_i|^2 |dZ_i|^2`` (plus ``n^2 |dZ_i|^2`` for the bias). With
``S`` the mean of those squared norms and ``M = |g|^2`` the batch gradient's, the unbiased estimates are::

    tr(Sigma) = n / (n - 1) * (S - M)        |G|^2 = (n M - S) / (n - 1)

One batch's ``|G|^2`` is noisy and may come out negative, so, as the paper does, sums (or moving averages) of the
two are taken over many batches before dividing. The penalty's gradient is the same for every sample: it is
taken out of ``g`` (the noise scale is the data loss's). Batch normalization couples the samples of a batch: a
layer before it gets a share from each sample that depends on the others (and that sums to nearly nothing), so
only the dense layers after the last batch normalization layer are measured (``measured_layers``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def mean_sample_sq(X: np.ndarray, dZ: np.ndarray, use_bias: bool = True) -> float:
    """The mean over the batch of each sample's own squared gradient norm for a dense layer (kernel, and bias with
    ``use_bias``): ``S = n sum_i |dZ_i|^2 (|x_i|^2 + use_bias)``, from the row norms alone.

    Parameters
    ----------
    X : ndarray of shape (n, fan_in)
        The layer's inputs over the batch.
    dZ : ndarray of shape (n, units)
        The loss's gradient with respect to the layer's pre-activation outputs, divided by ``n`` (as the engine's
        mean-reduced losses give it).
    use_bias : bool, default=True
        Whether the layer has a bias, whose per-sample gradient is ``n dZ_i``.

    Returns
    -------
    float
        ``S``; computed in the arrays' own precision (a few calls: on a small layer recorded often, each call's
        fixed cost is most of it), again in float64 where float32 overflows.
    """
    n = len(X)
    x_sq, d_sq = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", dZ, dZ)
    total = float(np.dot(d_sq, x_sq)) + (float(d_sq.sum()) if use_bias else 0.0)
    if not math.isfinite(total):
        x_sq, d_sq = (np.einsum("ij,ij->i", v, v, dtype=np.float64) for v in (X, dZ))
        total = float(np.dot(d_sq, x_sq)) + (float(d_sq.sum()) if use_bias else 0.0)
    return n * total


def estimate(mean_sq: float, batch_sq: float, n: int) -> tuple[float, float]:
    """Unbiased ``(tr(Sigma), |G|^2)`` from a batch of ``n`` samples: the mean of their own squared gradient norms
    and the squared norm of the batch's gradient. NaN for a batch of fewer than two (no spread to measure)."""
    if n < 2:
        return math.nan, math.nan
    return n / (n - 1) * (mean_sq - batch_sq), (n * batch_sq - mean_sq) / (n - 1)


def _data_sq(layer, name: str, regularizer) -> float:
    """``|g|^2`` of one weight's gradient, the penalty's share taken out."""
    g = layer.grads[name]
    if regularizer is not None:
        penalty = np.zeros_like(layer.params[name])
        regularizer.add_gradient(layer.params[name], penalty)
        g = g - penalty
    sq = float(np.vdot(g, g))  # the gradient's own precision, as the trainer takes it; float64 only on overflow
    return sq if math.isfinite(sq) else float(np.vdot(g.astype(np.float64), g))


def dense_noise(layer) -> tuple[float, float]:
    """``(tr(Sigma), |G|^2)`` of a dense layer's kernel and bias, from its last backward pass.

    Parameters
    ----------
    layer : dnncli.nn.layers.Dense
        A dense layer after ``backward``: its inputs ``X``, its ``dZ`` and its gradients are this batch's.

    Returns
    -------
    tuple of float
        The estimates; NaN when the batch has one sample or the layer has not been through a backward pass.
    """
    X, dZ = getattr(layer, "X", None), getattr(layer, "dZ", None)
    if X is None or dZ is None or len(X) != len(dZ):
        return math.nan, math.nan
    batch_sq = _data_sq(layer, "kernel", layer.kernel_regularizer)
    if layer.use_bias:
        batch_sq += _data_sq(layer, "bias", layer.bias_regularizer)
    return estimate(mean_sample_sq(X, dZ, layer.use_bias), batch_sq, len(X))


def measured_layers(model) -> set[int]:
    """The positions of the dense layers whose per-sample gradients ``dense_noise`` measures: those after the last
    batch normalization layer (every dense layer of a network without one)."""
    last = max((k for k, layer in enumerate(model.layers) if layer.type_name == "batch_normalization"), default=-1)
    return {k for k, layer in enumerate(model.layers) if k > last and "kernel" in layer.grads}


def _finite(row: dict) -> bool:
    values = (row.get("noise_trace"), row.get("signal_sq"))
    return all(isinstance(v, float) and math.isfinite(v) for v in values)


def total(rows: list[dict]) -> tuple[float, float]:
    """``(tr(Sigma), |G|^2)`` of the network at one step: its layers' rows summed (those measured)."""
    kept = [r for r in rows if _finite(r)]
    if not kept:
        return math.nan, math.nan
    return sum(r["noise_trace"] for r in kept), sum(r["signal_sq"] for r in kept)


def b_simple(traces: Iterable[float], signals: Iterable[float]) -> float:
    """``sum(tr(Sigma)) / sum(|G|^2)`` over the finite estimates; NaN with none, infinity where the summed signal
    is not positive (the gradient is all noise at this batch size)."""
    pairs = [(t, s) for t, s in zip(traces, signals) if math.isfinite(t) and math.isfinite(s)]
    if not pairs:
        return math.nan
    trace, signal = sum(t for t, _ in pairs), sum(s for _, s in pairs)
    return trace / signal if signal > 0 else math.inf


def by_step(records: list[dict]) -> list[tuple[int, int, float, float]]:
    """``(epoch, step, tr(Sigma), |G|^2)`` of the whole network at each recorded step: the layers' rows summed.

    ``records``: the monitor's rows (``gradients.csv``), with ``noise_trace`` and ``signal_sq``; a step whose
    layers have none (an older run, a batch of one sample) is left out.
    """
    steps: dict[tuple[int, int], list[dict]] = {}
    for r in records:
        if _finite(r):
            steps.setdefault((r["epoch"], r["step"]), []).append(r)
    return [(epoch, step, *total(rows)) for (epoch, step), rows in sorted(steps.items())]


def by_epoch(records: list[dict]) -> dict[int, float]:
    """``B_simple`` of each epoch: its recorded steps' estimates summed, then divided."""
    epochs: dict[int, tuple[list[float], list[float]]] = {}
    for epoch, _, trace, signal in by_step(records):
        traces, signals = epochs.setdefault(epoch, ([], []))
        traces.append(trace)
        signals.append(signal)
    return {epoch: b_simple(t, s) for epoch, (t, s) in sorted(epochs.items())}


class RunningNoiseScale:
    """``B_simple`` from exponential moving averages of ``tr(Sigma)`` and ``|G|^2``, each bias-corrected (as
    McCandlish et al. smooth them), for a value at every record that does not jump with each batch.

    Parameters
    ----------
    smoothing : float, default=0.9
        The averages' decay per record.
    """

    def __init__(self, smoothing: float = 0.9):
        self.smoothing = smoothing
        self.trace = self.signal = 0.0
        self.count = 0

    def add(self, trace: float, signal: float) -> float:
        """Take one record's estimates; return ``B_simple`` so far (NaN while there is none)."""
        if math.isfinite(trace) and math.isfinite(signal):
            a = self.smoothing
            self.trace = a * self.trace + (1 - a) * trace
            self.signal = a * self.signal + (1 - a) * signal
            self.count += 1
        if not self.count:
            return math.nan
        # the bias corrections of the two averages are the same factor, so their ratio needs none
        return self.trace / self.signal if self.signal > 0 else math.inf
