"""A data set's rows summarized and compared for ``dnn doctor``, without a float64 copy of the whole split: each
feature's moments, and the samples one split shares, byte for byte, with another."""

from __future__ import annotations

import numpy as np


def column_moments(x: np.ndarray, rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and mean square in float64, a block of ``rows`` samples at a time (a float64 copy of
    Fashion-MNIST's training split would be 340 MB)."""
    flat = x.reshape(len(x), -1)
    total, squares = np.zeros(flat.shape[1]), np.zeros(flat.shape[1])
    for start in range(0, len(flat), rows):
        block = flat[start : start + rows].astype(np.float64)
        total += block.sum(axis=0)
        squares += np.einsum("ij,ij->j", block, block)
    n = max(len(flat), 1)
    return total / n, squares / n


def _rows(x: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    return flat.view(np.uint32) if flat.dtype.itemsize % 4 == 0 and flat.size else flat.view(np.uint8)


def row_hashes(x: np.ndarray, rows: int = 1024) -> np.ndarray:
    """A 64-bit hash of each sample's bytes: a sum of its words times fixed random odd weights, wrapping (equal
    rows hash equal; candidates are then compared byte for byte)."""
    words = _rows(x)
    weights = np.random.default_rng(0).integers(1, 2**63, words.shape[1], dtype=np.uint64) | np.uint64(1)
    out = np.empty(len(words), np.uint64)
    for start in range(0, len(words), rows):
        block = words[start : start + rows].astype(np.uint64)
        block *= weights
        out[start : start + rows] = block.sum(axis=1, dtype=np.uint64)
    return out


def shared_rows(x_train: np.ndarray, x: np.ndarray) -> int:
    """How many samples of ``x`` are, byte for byte, samples of ``x_train``."""
    train_hash, hashes = row_hashes(x_train), row_hashes(x)
    candidates = np.flatnonzero(np.isin(hashes, train_hash))
    if not len(candidates):
        return 0
    by_hash: dict[int, list[int]] = {}
    wanted = set(hashes[candidates].tolist())
    for k in np.flatnonzero(np.isin(train_hash, hashes[candidates])):
        if int(train_hash[k]) in wanted:
            by_hash.setdefault(int(train_hash[k]), []).append(int(k))
    train_rows, rows = _rows(x_train), _rows(x)
    return sum(any(np.array_equal(rows[i], train_rows[k]) for k in by_hash.get(int(hashes[i]), [])) for i in candidates)
