"""Histograms of a layer's activations on fixed bins, recorded with the monitor's other statistics (``act_hist`` in
``gradients.csv``) for ``dnn plot --activations``: one column per recorded step, one heat map per layer (fastai's
"colorful dimension").

The bins are fixed by the activation, so that every record of a layer shares them: ``BINS`` equal bins over
the activation's range (sigmoid and softmax [0, 1], tanh and softsign [-1, 1]); for relu a bin of its own for
exactly 0 (a dead or resting unit), then ``BINS - 1`` bins over (0, ``TOP``]; any other activation [-``TOP``,
``TOP``]. A value beyond the range counts in the bin at its edge (fastai's ``histc(40, 0, 10)`` clips the same
way), so an exploding layer shows as a band at the top.
"""

from __future__ import annotations

import functools

import numpy as np

BINS = 40
TOP = 10.0  # the range of an unbounded activation: healthy outputs are of order 1
BOUNDED = {
    "sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}
ZERO_FLOOR = ("relu",)  # activations whose outputs rest at exactly 0: that share gets a bin of its own
MAX_VALUES = 16384  # the values a record's histogram counts at most: its cost stays a few tens of microseconds


@functools.cache
def bins(activation: str) -> tuple[np.ndarray, bool]:
    """The ``BINS + 1`` edges of ``activation``'s bins, and whether the first bin is exactly 0 (relu: its two
    edges are both 0). Cached (made once per activation, not at each record): do not write into the edges."""
    if activation in ZERO_FLOOR:
        return np.concatenate([[0.0], np.linspace(0.0, TOP, BINS)]), True
    low, high = BOUNDED.get(activation, (-TOP, TOP))
    return np.linspace(low, high, BINS + 1), False


def histogram(A: np.ndarray, activation: str) -> np.ndarray:
    """Counts of a layer's outputs ``A`` (samples by units) in ``activation``'s bins (NaN left out, infinities in
    the edge bins), over its first samples up to ``MAX_VALUES`` values (a batch comes shuffled: they stand for it).

    A few passes of arithmetic in the array's own precision and a ``bincount``: ``np.histogram`` costs several
    times more on the small arrays of a recorded step. A value on a bin's edge may fall in the bin beside.
    """
    rows = max(1, MAX_VALUES // max(A[0].size, 1)) if len(A) else 0
    a = A[:rows].ravel()
    if np.isnan(a).any():
        a = a[~np.isnan(a)]
    edges, zero_bin = bins(activation)
    if zero_bin:  # 0 (or less) in bin 0; (0, TOP] in bins 1 to BINS - 1, by the ceiling of the scaled value
        t = np.multiply(a, a.dtype.type((BINS - 1) / TOP))
        np.ceil(t, out=t)
    else:
        t = np.subtract(a, a.dtype.type(edges[0]))
        t *= a.dtype.type(BINS / (edges[-1] - edges[0]))
    np.clip(t, 0, BINS - 1, out=t)
    return np.bincount(t.astype(np.intp), minlength=BINS)


def encode(counts: np.ndarray) -> str:
    """The counts as ``gradients.csv``'s ``act_hist`` cell: whole numbers separated by spaces."""
    return " ".join(map(str, counts.tolist()))


def decode(cell) -> np.ndarray | None:
    """``act_hist``'s counts back; None for a cell that holds none (an older run) or is not ``BINS`` counts."""
    if not isinstance(cell, str) or not cell.strip():
        return None
    try:
        counts = np.array([int(v) for v in cell.split()], dtype=np.int64)
    except ValueError:
        return None
    return counts if len(counts) == BINS else None
