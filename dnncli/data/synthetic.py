"""Seeded synthetic datasets, so that the tool runs on a fresh machine with no files at all.

Each generator's signature declares the arguments it takes and their defaults: a source given an argument
its generator does not take refuses it.
"""

from __future__ import annotations

import inspect

import numpy as np


def spirals(rng, n_samples, classes=2, noise=0.1):
    """Interleaved spiral arms, one per class, in 2-D."""
    labels = np.arange(n_samples) % classes
    t = rng.uniform(0.0, 1.0, n_samples)
    radius = t
    angle = 3.5 * np.pi * t + 2 * np.pi * labels / classes
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise, x.shape)
    return x, labels


def moons(rng, n_samples, noise=0.1):
    """Two interleaving half circles (as scikit-learn's make_moons)."""
    labels = np.arange(n_samples) % 2
    t = rng.uniform(0.0, np.pi, n_samples)
    x = np.where(
        labels[:, None] == 0,
        np.stack([np.cos(t), np.sin(t)], axis=1),
        np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1),
    )
    return x + rng.normal(0.0, noise, x.shape), labels


def circles(rng, n_samples, noise=0.1, factor=0.5):
    """A small circle inside a large one."""
    labels = np.arange(n_samples) % 2
    t = rng.uniform(0.0, 2 * np.pi, n_samples)
    r = np.where(labels == 1, factor, 1.0)
    x = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    return x + rng.normal(0.0, noise, x.shape), labels


def xor(rng, n_samples, noise=0.1):
    """Points in [-1, 1]^2 labelled by whether their coordinates' signs differ."""
    x = rng.uniform(-1.0, 1.0, (n_samples, 2))
    labels = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64)
    return x + rng.normal(0.0, noise, x.shape), labels


def blobs(rng, n_samples, classes=2, n_features=2, cluster_std=1.0):
    """Gaussian clusters, one per class, centres uniform in [-5, 5]^n_features."""
    centres = rng.uniform(-5.0, 5.0, (classes, n_features))
    labels = np.arange(n_samples) % classes
    x = centres[labels] + rng.normal(0.0, cluster_std, (n_samples, n_features))
    return x, labels


def regression(rng, n_samples, n_features=2, noise=0.1):
    """A smooth non-linear target: y = sin(x0) + 0.5*x1^2 - 0.3*x0*x1 (+ more features, linearly)."""
    x = rng.uniform(-2.0, 2.0, (n_samples, n_features))
    y = np.sin(x[:, 0])
    if n_features > 1:
        y = y + 0.5 * x[:, 1] ** 2 - 0.3 * x[:, 0] * x[:, 1]
    if n_features > 2:
        y = y + x[:, 2:] @ np.linspace(0.5, -0.5, n_features - 2)
    return x, y + rng.normal(0.0, noise, n_samples)


GENERATORS = {f.__name__: f for f in (spirals, moons, circles, xor, blobs, regression)}


def arguments(name: str) -> dict:
    """The arguments generator ``name`` takes beyond ``rng`` and ``n_samples``, with their defaults."""
    params = list(inspect.signature(GENERATORS[name]).parameters.values())[2:]
    return {p.name: p.default for p in params}
