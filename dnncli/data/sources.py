"""The ``data:`` section's sources: where samples come from, each with its own arguments, loaded into splits.

A source yields raw train and test arrays (splitting off a test set when it
has none), and holds out a seeded, stratified validation set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from dnncli.data import arrays as arrays_mod
from dnncli.data import idx, synthetic
from dnncli.data.arrays import checked_pair, load_npy, load_npz
from dnncli.data.csv_source import CsvSource
from dnncli.data.source import SCALES, Dataset, Source, expand_path
from dnncli.errors import DnnError, check_choice, check_float, check_int
from dnncli.registry import Registry

__all__ = ["SCALES", "SOURCES", "CsvSource", "Dataset", "Source", "build_source", "expand_path", "resolve_spec"]


class SyntheticSource(Source):
    """Built-in seeded generators: spirals, moons, circles, xor, blobs (classification), regression.

    ``classes``, ``n_features``, ``noise``, ``factor`` and ``cluster_std`` apply to the generators that take
    them, with each generator's own default (``data/synthetic.py``); one given to a generator that does not
    take it is an error.
    """

    name = "synthetic"
    CHECKS: ClassVar[dict] = {
        "classes": lambda v: check_int(v, "data.classes", minimum=2),
        "n_features": lambda v: check_int(v, "data.n_features"),
        "noise": lambda v: check_float(v, "data.noise", 0.0),
        "factor": lambda v: check_float(v, "data.factor", 0.0, 1.0, True, True),
        "cluster_std": lambda v: check_float(v, "data.cluster_std", 0.0, low_open=True),
    }

    def __init__(
        self,
        generator: str = "spirals",
        n_samples: int = 1000,
        classes: int | None = None,
        n_features: int | None = None,
        noise: float | None = None,
        factor: float | None = None,
        cluster_std: float | None = None,
        **common,
    ):
        super().__init__(**common)
        self.generator = check_choice(generator, "data.generator", synthetic.GENERATORS)
        self.n_samples = check_int(n_samples, "data.n_samples", minimum=2)
        takes = synthetic.arguments(self.generator)
        given = {"classes": classes, "n_features": n_features, "noise": noise, "factor": factor}
        given["cluster_std"] = cluster_std
        self.args = {}
        for key, value in given.items():
            if key not in takes:
                if value is not None:
                    raise DnnError(
                        f"data.{key} does not apply to the {self.generator} generator, which takes"
                        f" {', '.join(['n_samples', *takes])}. Received: {key}={value!r}",
                        (key,),
                    )
                continue
            self.args[key] = self.CHECKS[key](takes[key] if value is None else value)
        for key in given:
            setattr(self, key, self.args.get(key))

    def get_config(self):
        cfg = super().get_config()
        return {k: v for k, v in cfg.items() if k not in self.CHECKS or k in self.args}

    def arrays(self, rng):
        width = self.args.get("n_features", 2)
        needs = arrays_mod.synthetic_bytes(self.n_samples, width)
        what = f"{self.n_samples} samples of {width} features"
        arrays_mod.check_fits(needs, what, ("n_samples",), "use fewer samples (data.n_samples)")
        x, y = synthetic.GENERATORS[self.generator](rng, self.n_samples, **self.args)
        return x.astype(np.float64), y


class IdxSource(Source):
    """MNIST-style IDX files: a directory holding the four standard files, or each file named."""

    name = "idx"
    path_keys = ("path", "train_images", "train_labels", "test_images", "test_labels")

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

    def _file(self, key: str) -> Path:
        explicit = getattr(self, key)
        if explicit is not None:
            return expand_path(explicit, self.base_dirs)
        directory = expand_path(self.path, self.base_dirs)
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

    def describe(self):
        return f"data ({self.path or self.train_images})"


class NpzSource(Source):
    """Arrays in an NPZ file (``x_key``, ``y_key``), with a test file or a test split, and a validation file."""

    name = "npz"
    path_keys = ("path", "test_path", "validation_path")

    def __init__(
        self,
        path: str,
        x_key: str = "x",
        y_key: str = "y",
        test_path: str | None = None,
        validation_path: str | None = None,
        **common,
    ):
        super().__init__(**common)
        self.path, self.x_key, self.y_key, self.test_path = path, x_key, y_key, test_path
        self.validation_path = validation_path

    def describe(self):
        return f"data ({self.path})"

    def _read(self, text):
        path = expand_path(text, self.base_dirs)
        got = load_npz(path, (self.x_key, self.y_key))
        return checked_pair(path, got[self.x_key], got[self.y_key])

    def arrays(self, rng):
        x, y = self._read(self.path)
        if self.test_path is None:
            return x, y
        return (x, y, *self._read(self.test_path))

    def validation_arrays(self):
        return None if self.validation_path is None else self._read(self.validation_path)


class NpySource(Source):
    """A pair of .npy files (inputs, targets), memory-mapped when larger than 64 MiB."""

    name = "npy"
    path_keys = ("x_path", "y_path", "test_x_path", "test_y_path", "validation_x_path", "validation_y_path")
    MMAP_BYTES = 64 << 20

    def __init__(
        self,
        x_path: str,
        y_path: str,
        test_x_path: str | None = None,
        test_y_path: str | None = None,
        validation_x_path: str | None = None,
        validation_y_path: str | None = None,
        **common,
    ):
        super().__init__(**common)
        self.x_path, self.y_path, self.test_x_path, self.test_y_path = x_path, y_path, test_x_path, test_y_path
        self.validation_x_path, self.validation_y_path = validation_x_path, validation_y_path
        for a, b in (("test_x_path", "test_y_path"), ("validation_x_path", "validation_y_path")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise DnnError(f"data.{a} and data.{b} go together.", (a,))

    def describe(self):
        return f"data ({self.x_path})"

    def _load(self, text):
        path = expand_path(text, self.base_dirs)
        return path, load_npy(path, self.MMAP_BYTES)

    def arrays(self, rng):
        (xp, x), (_, y) = self._load(self.x_path), self._load(self.y_path)
        x, y = checked_pair(xp, x, y)
        if self.test_x_path is None:
            return x, y
        (tp, tx), (_, ty) = self._load(self.test_x_path), self._load(self.test_y_path)
        return (x, y, *checked_pair(tp, tx, ty))

    def validation_arrays(self):
        if self.validation_x_path is None:
            return None
        (vp, vx), (_, vy) = self._load(self.validation_x_path), self._load(self.validation_y_path)
        return checked_pair(vp, vx, vy)


SOURCES = {cls.name: cls for cls in (SyntheticSource, IdxSource, CsvSource, NpzSource, NpySource)}
REGISTRY = Registry("data source", SOURCES, key_field="source")


def resolve_spec(spec, check_paths: bool = True) -> dict:
    """Validate the ``data:`` section and fill in every default (synthetic spirals if absent)."""
    if spec is None:
        spec = {"source": "synthetic"}
    if not isinstance(spec, Mapping):
        raise DnnError(f"data must be a mapping with a 'source'. Received: {spec!r}", ("data",))
    spec = {"source": "synthetic", **spec}
    source = REGISTRY.get(spec, "data")
    if check_paths:
        try:
            source.check_paths()
        except DnnError as err:
            raise err.at("data") from None
    return source.get_config()


def build_source(spec: Mapping, base_dirs=()) -> Source:
    """The source a resolved ``data:`` section describes; ``base_dirs``: the folders of its config(s)."""
    source = REGISTRY.get(spec, "data")
    source.base_dirs = tuple(Path(d) for d in base_dirs)
    return source
