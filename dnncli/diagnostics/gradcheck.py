"""Central-difference check of a model's backward pass, in float64.

``dL/dw ~ (L(w + h) - L(w - h)) / 2h`` for every parameter, compared with the
analytic gradient by the relative error ``max|a - n| / max(max|a|, max|n|, floor)``
per weight array: the worst entry's error relative to the array's gradient scale.
Dropout draws the same mask for every evaluation (its generator state is
restored each time), so the check sees one fixed function.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from dnncli.nn import losses as losses_mod


@dataclass
class GradCheckRow:
    layer_index: int
    layer: str
    param: str
    max_rel_error: float
    max_abs_error: float
    checked: int

    def passed(self, tol: float) -> bool:
        return self.max_rel_error <= tol


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-7) -> float:
    """``max|a - n| / max(max|a|, max|n|, floor)``.

    The floor sits above the rounding noise of central differences (about
    1e-16 / h), so an all-but-zero gradient does not fail on noise.
    """
    if analytic.size == 0:
        return 0.0
    scale = max(float(np.abs(analytic).max()), float(np.abs(numeric).max()), floor)
    return float(np.abs(analytic - numeric).max()) / scale


def check_model(model, x, y, loss, h: float = 1e-6, max_per_param: int | None = None, seed: int = 0):
    """Compare the analytic and numeric gradients of every trainable weight.

    Parameters
    ----------
    model : Sequential
        A float64 model (build it with ``dtype="float64"``).
    x, y : ndarray
        A few samples and their targets (prepared by the loss).
    loss : Loss or spec
        The data loss; regularization penalties are included.
    h : float, default=1e-6
        Half the central-difference step.
    max_per_param : int or None, default=None
        Check at most this many entries of each weight, chosen at random.
    seed : int, default=0
        Chooses the entries when ``max_per_param`` is set.

    Returns
    -------
    list of GradCheckRow
    """
    loss = losses_mod.get(loss)
    frozen = _Frozen(model)  # every evaluation sees the same dropout masks and moving statistics

    def total_loss() -> float:
        frozen.restore()
        return model.loss_value(x, y, loss, training=True) + model.penalty()

    frozen.restore()
    model.compute_gradients(x, y, loss)
    analytic = [g.copy() for g in model.gradients]
    rng = np.random.default_rng(seed)
    rows = []
    trainable = [(li, layer, spec) for li, layer in enumerate(model.layers) for spec in layer.specs if spec.trainable]
    for (li, layer, spec), a in zip(trainable, analytic):
        flat = layer.params[spec.name].reshape(-1)
        picks = np.arange(flat.size)
        if max_per_param is not None and flat.size > max_per_param:
            picks = rng.choice(flat.size, max_per_param, replace=False)
        numeric = _central_differences(flat, picks, total_loss, h)
        expected = a.ravel()[picks]
        error = float(np.abs(expected - numeric).max(initial=0.0))
        rows.append(GradCheckRow(li, layer.name, spec.name, relative_error(expected, numeric), error, len(picks)))
    frozen.restore()
    return rows


class _Frozen:
    """The random generators' states and moving statistics of a model, put back before each evaluation."""

    def __init__(self, model):
        self.model = model
        self.generators = model.generators()
        self.states = {k: copy.deepcopy(g.bit_generator.state) for k, g in self.generators.items()}
        self.moving = {
            (i, k): v.copy()
            for i, layer in enumerate(model.layers)
            for k, v in layer.params.items()
            if k.startswith("moving_")
        }

    def restore(self) -> None:
        for k, g in self.generators.items():
            g.bit_generator.state = copy.deepcopy(self.states[k])
        for (i, k), v in self.moving.items():
            self.model.layers[i].params[k][...] = v


def _central_differences(flat: np.ndarray, picks: np.ndarray, total_loss, h: float) -> np.ndarray:
    """(L(w + h) - L(w - h)) / 2h for each picked entry of the weight ``flat``, left as it was."""
    numeric = np.empty(len(picks))
    for j, p in enumerate(picks):
        old = flat[p]
        flat[p] = old + h
        up = total_loss()
        flat[p] = old - h
        down = total_loss()
        flat[p] = old
        numeric[j] = (up - down) / (2 * h)
    return numeric
