"""What the monitor records beyond the gradient's size, at every ``every``-th record's step: each dense layer's two
estimates of the gradient noise scale (``noise.py``) and a histogram of its activations (``histograms.py``), the
columns ``noise_trace``, ``signal_sq`` and ``act_hist`` of ``gradients.csv``.

They are taken every ``max(monitor.every, EVERY)`` steps: on a small network recorded at every step, their few
tens of microseconds a layer would otherwise be a good part of the step (``bench/noise_overhead.py``).
"""

from __future__ import annotations

import math

from dnncli.diagnostics import histograms, noise

EVERY = 20  # steps between two measurements, at the least
EMPTY = {"noise_trace": math.nan, "signal_sq": math.nan, "act_hist": ""}  # a record that measured none


class Instruments:
    """The noise scale's estimates and the activation histograms of a model's watched layers.

    Parameters
    ----------
    model : dnncli.nn.model.Sequential
        The model; the noise scale is measured on the dense layers after its last batch normalization.
    every : int
        The monitor's ``every``: the instruments measure at every ``max(every, EVERY)``-th step.
    """

    def __init__(self, model, every: int):
        self.noisy = noise.measured_layers(model)  # the layers whose per-sample gradient norms are exact
        self.every = max(every, EVERY)
        self.on = True  # off only to time them

    def due(self, step: int) -> bool:
        """Whether to measure at ``step`` (counted from 0, as the trainer counts)."""
        return self.on and step % self.every == 0

    def row(self, watched, layer, act_layer) -> dict:
        """The three columns of one layer's record, this step."""
        trace, signal = noise.dense_noise(layer) if watched.index in self.noisy else (math.nan, math.nan)
        counts = histograms.histogram(act_layer.A, watched.activation)
        return {"noise_trace": trace, "signal_sq": signal, "act_hist": histograms.encode(counts)}
