"""The ``data:`` section's sources: where samples come from, each with its own arguments, loaded into splits.

A source yields raw train and test arrays (splitting off a test set when it
has none), and holds out a seeded, stratified validation set.
"""

from __future__ import annotations

import numbers
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from dnncli.data import augment as augment_mod
from dnncli.data import catalog, idx, synthetic
from dnncli.data.split import count_classes, split_indices
from dnncli.data.table import MISSING, TableEncoder, parse_targets, read_csv
from dnncli.errors import DnnError, check_bool, check_choice, check_float, check_int, suggest
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
    class_names: list[str] | None = None
    encoder: TableEncoder | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


def expand_path(text, base_dirs=()) -> Path:
    """Expand ``$VAR`` and ``~``; relative paths are relative to the working directory.

    ``$DNN_DATASETS/...`` is found by the dataset rule (see ``catalog``), from
    ``base_dirs``: the folder of the config that names it (and of the config its run started from).
    """
    if not isinstance(text, str) or not text:
        raise DnnError(f"path must be a non-empty string. Received: {text!r}", ("path",))
    if catalog.reference(text) is not None:
        return catalog.locate(text, base_dirs)
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
        (IDX's t10k files) or 0.2; 0: no test set, every sample trains (as Keras's ``fit(x, y)``).
    scale : {"none", "standardize", "minmax"} or float, default="none"
        Input scaling fitted on the training split; a number divides by it (255 for images).
    target_scale : {"none", "standardize", "minmax"} or float, default="none"
        The same for regression targets; predictions are scaled back.
    augment : mapping or None, default=None
        Training-split augmentation: ``gaussian_noise`` (stddev), ``shift``
        (pixels) and ``horizontal_flip`` (images), redrawn every epoch, seeded.
    """

    name = "source"
    path_keys: tuple[str, ...] = ()  # arguments that hold file paths
    base_dirs: tuple[Path, ...] = ()  # the config's folder(s), where the dataset rule starts looking

    def __init__(self, test_split: float | None = None, scale="none", target_scale="none", augment=None):
        self.test_split = (
            None if test_split is None else check_float(test_split, "data.test_split", 0.0, 1.0, False, True)
        )
        self.scale = _check_scale(scale, "data.scale")
        self.target_scale = _check_scale(target_scale, "data.target_scale")
        self.augment = augment_mod.build(augment).get_config() if augment is not None else None

    def describe(self) -> str:
        """Where the data comes from, for messages."""
        return f"data ({self.name})"

    def check_paths(self) -> None:
        """Expand every path argument now, so an unset ``$VARIABLE`` is reported with its key."""
        for key in self.path_keys:
            value = getattr(self, key)
            # a dataset path is looked for when it is read: validate and summary need no data
            if value is not None and catalog.reference(value) is None:
                try:
                    expand_path(value)
                except DnnError as err:
                    raise DnnError(err.message, (key,)) from None

    def get_config(self) -> dict:
        return {"source": self.name, **{k: getattr(self, k) for k in REGISTRY.parameters(self.name)}}

    def arrays(self, rng) -> tuple:
        """(x, y) of the whole source, or (x_train, y_train, x_test, y_test) if it has a test set."""
        raise NotImplementedError

    def validation_arrays(self) -> tuple | None:
        """(x_val, y_val) from the source's own validation file(s), or None where it names none."""
        return None

    def load(self, seed: int, regression: bool = False, validation_split: float = 0.0) -> Dataset:
        """Train, validation and test arrays.

        ``regression`` makes targets float and the splits unstratified;
        ``validation_split`` holds out that fraction of the training split,
        stratified by class and seeded.
        """
        rng = np.random.default_rng([seed, 0xDA7A])
        got = self.arrays(rng)
        if regression:
            got = tuple(a.astype(np.float64) if i % 2 else a for i, a in enumerate(got))
        if len(got) == 4 and self.test_split is None:
            x_train, y_train, x_test, y_test = got
        else:
            if len(got) == 2:
                x, y = got
            else:  # an explicit test_split re-splits the source's own train + test
                x, y = np.concatenate([got[0], got[2]]), np.concatenate([got[1], got[3]])
            split = 0.2 if self.test_split is None else self.test_split
            kept, held = split_indices(y, split, rng, "data.test_split")
            x_train, y_train, x_test, y_test = x[kept], y[kept], x[held], y[held]
        x_val = y_val = None
        given = self.validation_arrays()
        if given is not None:
            x_val, y_val = given
            if regression:
                y_val = y_val.astype(np.float64)
        elif validation_split > 0:
            vrng = np.random.default_rng([seed, 0x5A11])
            kept, held = split_indices(y_train, validation_split, vrng, "training.validation_split", not regression)
            x_train, y_train, x_val, y_val = x_train[kept], y_train[kept], x_train[held], y_train[held]
        classes = None if regression else count_classes(np.concatenate([y_train, y_test]))
        return Dataset(x_train, y_train, x_test, y_test, classes, x_val=x_val, y_val=y_val)


def _check_scale(value, name):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_float(value, name, 0.0, low_open=True)
    return check_choice(value, name, SCALES)


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


class CsvSource(Source):
    """A CSV table: named target column(s), numeric features, optional one-hot categorical columns.

    ``header: false`` reads files without a header line; ``columns`` names
    their columns (else they are "0", "1", ...). Statistics (categories, fill
    values, scaling) come from the training split only.
    """

    name = "csv"
    path_keys = ("path", "test_path", "validation_path")

    def __init__(
        self,
        path: str,
        target,
        test_path: str | None = None,
        header: bool = True,
        columns: list | None = None,
        drop: list | None = None,
        categorical: list | None = None,
        missing: str = "error",
        fill_value: float = 0.0,
        missing_values: list | None = None,
        class_names: list | None = None,
        delimiter: str = ",",
        validation_path: str | None = None,
        **common,
    ):
        super().__init__(**common)
        self.path, self.test_path, self.validation_path = path, test_path, validation_path
        self.header = check_bool(header, "data.header")
        self.columns = _names(columns, "columns")
        if self.columns is None and not self.header:
            raise DnnError(
                "data.columns must name the columns of a file without a header (header: false).", ("columns",)
            )
        self.target = target
        targets = _names([target] if isinstance(target, (str, int)) else target, "target")
        if not targets:
            raise DnnError("data.target must name the target column(s) of the CSV file.", ("target",))
        self.targets = [str(t) for t in targets]
        self.drop = _names(drop, "drop") or []
        self.categorical = _names(categorical, "categorical") or []
        self.missing = check_choice(missing, "data.missing", ("error", "mean", "median", "constant"))
        self.fill_value = check_float(fill_value, "data.fill_value")
        self.missing_values = list(MISSING) if missing_values is None else [str(v) for v in missing_values]
        self.class_names = _names(class_names, "class_names")
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise DnnError(f"data.delimiter must be one character. Received: {delimiter!r}", ("delimiter",))
        self.delimiter = delimiter

    def get_config(self):
        cfg = super().get_config()
        cfg["missing_values"] = self.missing_values
        return cfg

    def describe(self):
        return f"data ({self.path})"

    def read(self, path_text):
        path = expand_path(path_text, self.base_dirs)
        names, rows, lines = read_csv(path, self.header, self.columns, self.delimiter)
        for key, cols in (("target", self.targets), ("drop", self.drop), ("categorical", self.categorical)):
            for col in cols:
                if str(col) not in names:
                    raise DnnError(
                        f"{path}: data.{key} names {col!r}, which is not a column.{suggest(str(col), names)}", (key,)
                    )
        return path, names, rows, lines

    def encoder(self, names) -> TableEncoder:
        features = [n for n in names if n not in self.targets and n not in self.drop]
        return TableEncoder(
            features, [str(c) for c in self.categorical], self.missing, self.fill_value, self.missing_values
        )

    def load(self, seed: int, regression: bool = False, validation_split: float = 0.0) -> Dataset:
        rng = np.random.default_rng([seed, 0xDA7A])
        path, names, rows, lines = self.read(self.path)
        self.encoder(names).validate(names, rows, lines, path)  # bad cells first, whatever the split
        y, class_names = parse_targets(names, rows, lines, path, self.targets, self.class_names)
        if regression and class_names is None:
            y = y.astype(np.float64)
        if self.test_path is not None:
            tpath, tnames, trows, tlines = self.read(self.test_path)
            y_test, _ = parse_targets(tnames, trows, tlines, tpath, self.targets, class_names)
            if class_names is None and (regression or y.dtype != y_test.dtype):
                y, y_test = y.astype(np.float64), y_test.astype(np.float64)
            train = (names, rows, lines, path)
            test = (tnames, trows, tlines, tpath)
        else:
            fraction = 0.2 if self.test_split is None else self.test_split
            train, test, y, y_test = _split_rows((names, rows, lines, path), y, fraction, rng, "data.test_split")
        val = y_val = x_val = None
        if self.validation_path is not None:
            vpath, vnames, vrows, vlines = self.read(self.validation_path)
            y_val, _ = parse_targets(vnames, vrows, vlines, vpath, self.targets, class_names)
            if class_names is None and (regression or y.dtype != y_val.dtype):
                y_val = y_val.astype(np.float64)
            val = (vnames, vrows, vlines, vpath)
        elif validation_split > 0:
            vrng = np.random.default_rng([seed, 0x5A11])
            train, val, y, y_val = _split_rows(train, y, validation_split, vrng, "training.validation_split")
        # categories and fill values come from the training rows alone
        enc = self.encoder(names).fit(*train)
        x_train, x_test = enc.transform(*train), enc.transform(*test)
        if val is not None:
            x_val = enc.transform(*val)
        classes = None if regression else count_classes(np.concatenate([y, y_test]))
        if class_names is not None:
            classes = len(class_names)
        return Dataset(x_train, y, x_test, y_test, classes, class_names, enc, x_val, y_val)


def _split_rows(table, y, fraction, rng, key):
    names, rows, lines, path = table
    kept, held = split_indices(y, fraction, rng, key)

    def pick(idx):
        return (names, [rows[i] for i in idx], [lines[i] for i in idx], path)

    return pick(kept), pick(held), y[kept], y[held]


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
        try:
            with np.load(path, allow_pickle=False) as npz:
                for key in (self.x_key, self.y_key):
                    if key not in npz.files:
                        raise DnnError(f"{path}: no array {key!r}; it holds {', '.join(npz.files) or 'none'}.")
                x, y = npz[self.x_key], npz[self.y_key]
        except FileNotFoundError:
            raise DnnError(f"{path}: no such file.") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DnnError(f"{path}: not a readable NPZ file ({err}).") from None
        return _checked_pair(path, x, y)

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
        try:
            mode = "r" if path.stat().st_size > self.MMAP_BYTES else None
            return path, np.load(path, mmap_mode=mode, allow_pickle=False)
        except FileNotFoundError:
            raise DnnError(f"{path}: no such file.") from None
        except (OSError, ValueError) as err:
            raise DnnError(f"{path}: not a readable .npy file ({err}).") from None

    def arrays(self, rng):
        (xp, x), (_, y) = self._load(self.x_path), self._load(self.y_path)
        x, y = _checked_pair(xp, x, y)
        if self.test_x_path is None:
            return x, y
        (tp, tx), (_, ty) = self._load(self.test_x_path), self._load(self.test_y_path)
        return (x, y, *_checked_pair(tp, tx, ty))

    def validation_arrays(self):
        if self.validation_x_path is None:
            return None
        (vp, vx), (_, vy) = self._load(self.validation_x_path), self._load(self.validation_y_path)
        return _checked_pair(vp, vx, vy)


def _checked_pair(path, x, y):
    if len(x) != len(y):
        raise DnnError(f"{path}: {len(x)} inputs but {len(y)} targets.")
    if len(x) == 0:
        raise DnnError(f"{path}: no samples.")
    if not np.issubdtype(x.dtype, np.number):
        raise DnnError(f"{path}: inputs must be numbers. Received: dtype {x.dtype}")
    return x, y


def _names(value, key):
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise DnnError(f"data.{key} must be a list of column names. Received: {value!r}", (key,))
    return [str(v) for v in value]


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
