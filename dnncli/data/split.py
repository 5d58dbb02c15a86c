"""Seeded splits, stratified by class where the targets are class labels: one path for every source."""

from __future__ import annotations

import numpy as np

from dnncli.errors import DnnError


def split_indices(y, fraction: float, rng, key: str, stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices of ``fraction`` of the samples; stratified when ``y`` holds class labels.

    ``key`` names the setting, for the error when a split would be empty. A fraction of 0 holds out nothing: every
    sample is kept, in its order.
    """
    if fraction == 0:
        return np.arange(len(y)), np.arange(0)
    labels = y if stratify and count_classes(y) is not None else None
    kept, held = stratified_split(labels, len(y), fraction, rng)
    check_split(len(kept), len(held), key, fraction)
    return kept, held


def check_split(n_kept: int, n_held: int, key: str, fraction: float) -> None:
    if n_kept == 0 or n_held == 0:
        raise DnnError(f"{key} {fraction} of {n_kept + n_held} samples leaves an empty split.")


def count_classes(y) -> int | None:
    """Number of classes of integer labels (max + 1), or None for other targets."""
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        return int(y.max()) + 1 if len(y) else 0
    return None


def stratified_split(labels, n: int, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, held-out) index arrays; stratified by class when labels are given."""
    if fraction <= 0.0:
        return rng.permutation(n), np.arange(0)
    if labels is None:
        perm = rng.permutation(n)
        k = round(n * fraction)
        return np.sort(perm[k:]), np.sort(perm[:k])
    held = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        held.append(members[: round(len(members) * fraction)])
    held = np.sort(np.concatenate(held))
    mask = np.ones(n, bool)
    mask[held] = False
    return np.flatnonzero(mask), held
