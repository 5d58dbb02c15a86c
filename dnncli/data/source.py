"""A data source's contract: raw train and test arrays (a test set split off where it has none), a seeded and
stratified validation split, and the checks every source's values pass (float32's range, finite targets)."""

from __future__ import annotations

import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnncli.data import arrays as arrays_mod
from dnncli.data import augment as augment_mod
from dnncli.data import catalog
from dnncli.data.split import count_classes, split_indices
from dnncli.data.table import TableEncoder
from dnncli.errors import DnnError, check_choice, check_float
from dnncli.registry import constructor_parameters

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
    value_limit: float | None = None  # the largest input the model's dtype holds (prepare_data sets it)

    def __init__(self, test_split: float | None = None, scale="none", target_scale="none", augment=None):
        self.test_split = (
            None if test_split is None else check_float(test_split, "data.test_split", 0.0, 1.0, False, True)
        )
        self.scale = check_scale(scale, "data.scale")
        self.target_scale = check_scale(target_scale, "data.target_scale")
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
        return {"source": self.name, **{k: getattr(self, k) for k in constructor_parameters(type(self))}}

    def arrays(self, rng) -> tuple:
        """(x, y) of the whole source, or (x_train, y_train, x_test, y_test) if it has a test set."""
        raise NotImplementedError

    def validation_arrays(self) -> tuple | None:
        """(x_val, y_val) from the source's own validation file(s), or None where it names none."""
        return None

    def target_limit(self) -> float | None:
        """The largest regression target the model's dtype holds, where no ``target_scale`` rescales them first."""
        return self.value_limit if self.target_scale == "none" else None

    def load(self, seed: int, regression: bool = False, validation_split: float = 0.0) -> Dataset:
        """Train, validation and test arrays.

        ``regression`` makes targets float and the splits unstratified;
        ``validation_split`` holds out that fraction of the training split,
        stratified by class and seeded.
        """
        rng = self.split_rng(seed)
        got = self.arrays(rng)
        where = (self.describe(), f"{self.describe()}, test file")
        for i in range(0, len(got), 2) if self.value_limit is not None else ():  # 1e300 is no float32
            arrays_mod.check_range(got[i], self.value_limit, where[i // 2])
        if regression:  # targets as float64 (never through an integer type), finite
            lim = self.target_limit()
            got = tuple(arrays_mod.regression_targets(a, where[i // 2], lim) if i % 2 else a for i, a in enumerate(got))
        own_test = len(got) == 4 and self.test_split is None
        if own_test or len(got) == 2:
            x, y = got[:2]
        else:  # an explicit test_split re-splits the source's own train + test
            x, y = np.concatenate([got[0], got[2]]), np.concatenate([got[1], got[3]])
        given = self.validation_arrays()
        train, test, val = self.splits(y, rng, seed, validation_split, own_test, given is not None, not regression)
        x_test, y_test = (got[2], got[3]) if own_test else (x[test], y[test])
        x_val = y_val = None
        if given is not None:
            x_val, y_val = given
            if regression:
                y_val = arrays_mod.regression_targets(y_val, f"{self.describe()}, validation file", self.target_limit())
        elif val is not None:
            x_val, y_val = x[val], y[val]
        x_train, y_train = x[train], y[train]
        classes = None if regression else count_classes(np.concatenate([y_train, y_test]))
        return Dataset(x_train, y_train, x_test, y_test, classes, x_val=x_val, y_val=y_val)

    @staticmethod
    def split_rng(seed: int) -> np.random.Generator:
        """The generator of the test split (and of a synthetic source's samples, drawn first)."""
        return np.random.default_rng([seed, 0xDA7A])

    def splits(self, y, rng, seed: int, validation_split: float, own_test: bool, own_validation: bool, stratify: bool):
        """(train, test, validation) indices into ``y``: the test split (``data.test_split``, 0.2 by default) unless
        the source has a test set of its own (test None), then ``validation_split`` of the training rows unless it
        has a validation file (validation None). Seeded, and stratified by class where ``stratify``."""
        if own_test:
            train, test = np.arange(len(y)), None
        else:
            split = 0.2 if self.test_split is None else self.test_split
            train, test = split_indices(y, split, rng, "data.test_split")
        val = None
        if not own_validation and validation_split > 0:
            vrng = np.random.default_rng([seed, 0x5A11])
            kept, held = split_indices(y[train], validation_split, vrng, "training.validation_split", stratify)
            train, val = train[kept], train[held]
        return train, test, val


def check_scale(value, name):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_float(value, name, 0.0, low_open=True)
    return check_choice(value, name, SCALES)


def check_names(value, key):
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise DnnError(f"data.{key} must be a list of column names. Received: {value!r}", (key,))
    return [str(v) for v in value]
