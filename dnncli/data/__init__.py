"""The ``data:`` section: sources, preprocessing fitted on the training split, splits.

A source yields raw train and test arrays; ``Preprocessor`` scales inputs with
statistics of the training split only (saved in the run directory and applied
again by ``dnn eval`` and ``dnn predict``); ``split_validation`` holds out a
seeded, stratified validation set.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnncli.data import idx, synthetic
from dnncli.errors import DnnError, check_choice, check_float, check_int
from dnncli.registry import Registry

SCALES = ("none", "standardize", "minmax")


@dataclass
class Dataset:
    """Raw arrays of one source; ``classes`` is None for regression targets."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int | None


def expand_path(text, base_dir: Path | None) -> Path:
    """Expand ``$VAR`` and ``~``; relative paths are relative to the working directory."""
    if not isinstance(text, str) or not text:
        raise DnnError(f"path must be a non-empty string. Received: {text!r}", ("path",))
    for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", text):
        if var not in os.environ:
            raise DnnError(f"the path {text!r} uses ${var}, which is not set.", ("path",))
    return Path(os.path.expanduser(os.path.expandvars(text)))


class Source:
    """Options every source takes.

    Parameters
    ----------
    test_split : float or None, default=None
        Fraction held out as the test set; None: the source's own test set
        (IDX's t10k files) or 0.2.
    scale : {"none", "standardize", "minmax"} or float, default="none"
        Input scaling fitted on the training split; a number divides by it (255 for images).
    """

    name = "source"
    has_test_set = False

    def __init__(self, test_split: float | None = None, scale="none"):
        self.test_split = (
            None if test_split is None else check_float(test_split, "data.test_split", 0.0, 1.0, True, True)
        )
        if isinstance(scale, numbers.Real) and not isinstance(scale, bool):
            self.scale = check_float(scale, "data.scale", 0.0, low_open=True)
        else:
            self.scale = check_choice(scale, "data.scale", SCALES)

    def get_config(self) -> dict:
        return {"source": self.name, **{k: getattr(self, k) for k in REGISTRY.parameters(self.name)}}

    def arrays(self, rng) -> tuple:
        """(x, y) of the whole source, or (x_train, y_train, x_test, y_test) if it has a test set."""
        raise NotImplementedError

    def load(self, seed: int) -> Dataset:
        rng = np.random.default_rng([seed, 0xDA7A])
        got = self.arrays(rng)
        if len(got) == 4 and self.test_split is None:
            x_train, y_train, x_test, y_test = got
        else:
            if len(got) == 2:
                x, y = got
            else:  # an explicit test_split re-splits the source's own train + test
                x, y = np.concatenate([got[0], got[2]]), np.concatenate([got[1], got[3]])
            split = 0.2 if self.test_split is None else self.test_split
            labels = y if count_classes(y) is not None else None
            train, test = stratified_split(labels, len(x), split, rng)
            x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
        classes = count_classes(np.concatenate([y_train, y_test]))
        return Dataset(x_train, y_train, x_test, y_test, classes)


def count_classes(y) -> int | None:
    """Number of classes of integer labels (max + 1), or None for other targets."""
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        return int(y.max()) + 1 if len(y) else 0
    return None


class SyntheticSource(Source):
    """Built-in seeded generators: spirals, moons, circles, xor, blobs (classification), regression."""

    name = "synthetic"

    def __init__(
        self,
        generator: str = "spirals",
        n_samples: int = 1000,
        classes: int = 2,
        n_features: int = 2,
        noise: float = 0.1,
        factor: float = 0.5,
        cluster_std: float = 1.0,
        **common,
    ):
        super().__init__(**common)
        self.generator = check_choice(generator, "data.generator", synthetic.GENERATORS)
        self.n_samples = check_int(n_samples, "data.n_samples", minimum=2)
        self.classes = check_int(classes, "data.classes", minimum=2)
        self.n_features = check_int(n_features, "data.n_features")
        self.noise = check_float(noise, "data.noise", 0.0)
        self.factor = check_float(factor, "data.factor", 0.0, 1.0, True, True)
        self.cluster_std = check_float(cluster_std, "data.cluster_std", 0.0, low_open=True)

    def arrays(self, rng):
        x, y = synthetic.GENERATORS[self.generator](
            rng,
            self.n_samples,
            classes=self.classes,
            n_features=self.n_features,
            noise=self.noise,
            factor=self.factor,
            cluster_std=self.cluster_std,
        )
        return x.astype(np.float64), y


class IdxSource(Source):
    """MNIST-style IDX files: a directory holding the four standard files, or each file named."""

    name = "idx"
    has_test_set = True

    def __init__(
        self,
        path: str | None = None,
        train_images: str | None = None,
        train_labels: str | None = None,
        test_images: str | None = None,
        test_labels: str | None = None,
        **common,
    ):
        super().__init__(**common)
        self.path = path
        self.train_images, self.train_labels = train_images, train_labels
        self.test_images, self.test_labels = test_images, test_labels
        named = {
            "train_images": train_images,
            "train_labels": train_labels,
            "test_images": test_images,
            "test_labels": test_labels,
        }
        if path is None and None in named.values():
            raise DnnError("data.path (a directory of the four IDX files) or all four file keys are needed.", ("path",))
        for key, value in {"path": path, **named}.items():
            if value is not None:
                try:
                    expand_path(value, None)  # an unset $VARIABLE fails here, with the config's line
                except DnnError as err:
                    raise DnnError(err.message, (key,)) from None

    def _file(self, key: str) -> Path:
        explicit = getattr(self, key)
        if explicit is not None:
            return expand_path(explicit, None)
        directory = expand_path(self.path, None)
        if not directory.is_dir():
            raise DnnError(f"{directory}: no such directory of IDX files.", ("path",))
        return idx.find_standard(directory, idx.STANDARD_FILES[key])

    def arrays(self, rng):
        out = []
        for images, labels in (("train_images", "train_labels"), ("test_images", "test_labels")):
            ipath, lpath = self._file(images), self._file(labels)
            x, y = idx.read_idx(ipath), idx.read_idx(lpath)
            if len(x) != len(y):
                raise DnnError(f"{ipath} holds {len(x)} images but {lpath} holds {len(y)} labels.")
            out += [x, y.astype(np.int64)]
        return tuple(out)


SOURCES = {cls.name: cls for cls in (SyntheticSource, IdxSource)}
REGISTRY = Registry("data source", SOURCES, key_field="source")


def resolve_spec(spec, base_dir=None) -> dict:
    """Validate the ``data:`` section and fill in every default (synthetic spirals if absent)."""
    if spec is None:
        spec = {"source": "synthetic"}
    if not isinstance(spec, Mapping):
        raise DnnError(f"data must be a mapping with a 'source'. Received: {spec!r}", ("data",))
    spec = {"source": "synthetic", **spec}
    return REGISTRY.get(spec, "data").get_config()


def build_source(spec: Mapping) -> Source:
    return REGISTRY.get(spec, "data")


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


class Preprocessor:
    """``x' = (x - offset) / scale`` per feature, fitted on the training split."""

    def __init__(self, kind, offset: np.ndarray, scale: np.ndarray):
        self.kind, self.offset, self.scale = kind, offset, scale

    @classmethod
    def fit(cls, kind, x: np.ndarray) -> Preprocessor:
        shape = x.shape[1:]
        if kind == "none":
            return cls("none", np.zeros(shape), np.ones(shape))
        if not isinstance(kind, str):
            return cls(float(kind), np.zeros(shape), np.full(shape, float(kind)))
        xf = x.astype(np.float64)
        if kind == "standardize":
            offset, scale = xf.mean(axis=0), xf.std(axis=0)
        else:
            offset, scale = xf.min(axis=0), xf.max(axis=0) - xf.min(axis=0)
        scale[scale == 0] = 1.0  # a constant feature maps to 0 instead of NaN
        return cls(kind, offset, scale)

    def transform(self, x: np.ndarray, dtype) -> np.ndarray:
        out = np.asarray(x, dtype=dtype)
        if out is x:
            out = out.copy()
        if self.kind == "none":
            return out
        out -= self.offset.astype(dtype)
        out /= self.scale.astype(dtype)
        return out

    def arrays(self) -> dict:
        return {"kind": np.array(str(self.kind)), "offset": self.offset, "scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays) -> Preprocessor:
        kind = str(arrays["kind"])
        return cls(kind, np.asarray(arrays["offset"]), np.asarray(arrays["scale"]))
