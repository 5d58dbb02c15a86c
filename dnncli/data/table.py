"""CSV tables: parse with row and column in every error, encode features fitted on the training split.

``read_csv`` returns the header and the rows as strings. A ``TableEncoder``
learns, from the training rows only, the categories of the categorical
columns and the fill values of missing numbers; it is saved in the run
directory so that ``dnn eval`` and ``dnn predict`` encode new rows the same way.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from dnncli.data.arrays import check_fits, overflow_message, size_text, target_overflow
from dnncli.errors import DnnError, suggest

MISSING = ("", "?", "NA", "N/A", "NaN", "nan", "null")


def read_csv(path: Path, header: bool = True, columns=None, delimiter: str = ","):
    """(column names, rows of strings, first data line number) of a CSV file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            size = os.fstat(f.fileno()).st_size  # parsed into rows of strings, a CSV takes about 8 times its size
            check_fits(size * 8, f"{path}: {size_text(size)} of CSV text, parsed,")
            text = f.read()
        if "\0" in text:  # a binary file, or a corrupt one: no CSV holds a NUL byte
            line = text.count("\n", 0, text.index("\0")) + 1
            raise DnnError(f"{path}:{line}: a NUL byte; this is not a text CSV file (is it a binary file?).")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
        numbered, last = [], 0
        for row in reader:  # each row with the file line it starts on (a quoted cell may span lines)
            if any(c.strip() for c in row):
                numbered.append((last + 1, row))
            last = reader.line_num
    except FileNotFoundError:
        raise DnnError(f"{path}: no such file.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DnnError(f"{path}: cannot read as CSV ({err}).") from None
    if header:
        if not numbered:
            raise DnnError(f"{path}: the file is empty (no header line).")
        names = [c.strip() for c in numbered[0][1]]
        numbered = numbered[1:]
        if columns is not None:
            names = list(columns)
    else:
        if columns is None:
            width = len(numbered[0][1]) if numbered else 0
            names = [str(i) for i in range(width)]
        else:
            names = list(columns)
    if not numbered:
        raise DnnError(f"{path}: no data rows.")
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise DnnError(f"{path}: column name {sorted(dupes)[0]!r} appears twice.")
    for lineno, row in numbered:
        if len(row) != len(names):
            raise DnnError(f"{path}:{lineno}: {len(row)} values, but there are {len(names)} columns.")
    return names, [row for _, row in numbered], [n for n, _ in numbered]


_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE = {f"{sign}{word}" for sign in ("", "+", "-") for word in ("inf", "infinity", "nan")}


def parse_number(text: str) -> float | None:
    """The number a cell writes (``inf`` and ``nan`` included), or None.

    Stricter than ``float()``: no ``1_5`` (which ``float`` reads as 15), no digits of other scripts.
    """
    if _NUMBER.fullmatch(text) or text.lower() in _NONFINITE:
        return float(text)
    return None


def not_a_number(text: str, otherwise: str = "") -> str:
    """``'x' is not a number``, for a message; ``otherwise``: a hint for text that is not a number written with '_'."""
    joined = text.replace("_", "")
    if "_" in text and parse_number(joined) is not None:
        return f"{text!r} is not a number (a '_' between digits is refused, not read as {joined}; remove it)"
    return f"{text!r} is not a number{otherwise}"


class TableEncoder:
    """Numeric columns as they are (missing ones filled), categorical columns one-hot.

    Parameters
    ----------
    features : list of str
        Feature columns, in file order.
    categorical : list of str
        Which of them are one-hot encoded.
    missing : {"error", "mean", "median", "constant"}
        What a missing number does.
    fill_value : float
        The constant for ``missing: constant``.
    missing_values : list of str
        Cell texts that mean "missing".
    """

    def __init__(self, features, categorical, missing, fill_value, missing_values):
        self.features = list(features)
        self.categorical = list(categorical)
        self.missing = missing
        self.fill_value = fill_value
        self.missing_values = list(missing_values)
        self.categories: dict[str, list[str]] = {}
        self.fills: dict[str, float] = {}

    def _parse(self, names, rows, lines, path, limit=None) -> dict[str, np.ndarray]:
        """Column arrays: float64 (NaN where missing) for numbers, str for categories; ``limit``: the largest
        magnitude a number may have (the model's dtype's), or None."""
        index = {n: i for i, n in enumerate(names)}
        for col in self.features:
            if col not in index:
                raise DnnError(f"{path}: no column {col!r}.{suggest(col, names)}")
        missing = set(self.missing_values)
        out = {}
        for col in self.features:
            j = index[col]
            if col in self.categorical:
                out[col] = np.array([row[j].strip() for row in rows], dtype=object)
                continue
            values = np.empty(len(rows))
            for r, row in enumerate(rows):
                text = row[j].strip()
                if text in missing:
                    if self.missing == "error":
                        raise DnnError(
                            f"{path}:{lines[r]}: column {col!r} is missing a value; set data.missing to mean,"
                            " median or constant to fill it."
                        )
                    values[r] = math.nan
                    continue
                v = parse_number(text)
                if v is None:
                    hint = " (list the column under data.categorical to one-hot encode it)"
                    raise DnnError(f"{path}:{lines[r]}: column {col!r}: {not_a_number(text, hint)}.")
                if not math.isfinite(v):
                    raise DnnError(f"{path}:{lines[r]}: column {col!r} holds {text!r}; features must be finite.")
                if limit is not None and abs(v) > limit:
                    raise DnnError(overflow_message(f"{path}:{lines[r]}: column {col!r}", v, limit))
                values[r] = v
            out[col] = values
        return out

    def validate(self, names, rows, lines, path, limit=None) -> None:
        """Raise on the first bad cell of the whole table (``limit``: the largest magnitude a number may have)."""
        self._parse(names, rows, lines, path, limit)

    def fit(self, names, rows, lines, path) -> TableEncoder:
        cols = self._parse(names, rows, lines, path)
        for col, values in cols.items():
            if col in self.categorical:
                present = [v for v in values if v not in self.missing_values]
                self.categories[col] = sorted(set(present))
            elif self.missing in ("mean", "median"):
                finite = values[~np.isnan(values)]
                if len(finite) == 0:
                    raise DnnError(f"{path}: column {col!r} has no values to compute a {self.missing} from.")
                self.fills[col] = float(np.mean(finite) if self.missing == "mean" else np.median(finite))
            elif self.missing == "constant":
                self.fills[col] = self.fill_value
        return self

    def transform(self, names, rows, lines, path) -> np.ndarray:
        cols = self._parse(names, rows, lines, path)
        blocks = []
        for col in self.features:
            values = cols[col]
            if col in self.categorical:
                cats = self.categories[col]
                onehot = np.zeros((len(values), len(cats)))
                lookup = {c: k for k, c in enumerate(cats)}
                for r, v in enumerate(values):
                    k = lookup.get(v)
                    if k is not None:  # unseen or missing categories stay all-zero
                        onehot[r, k] = 1.0
                blocks.append(onehot)
            else:
                if np.isnan(values).any():
                    values = np.where(np.isnan(values), self.fills.get(col, math.nan), values)
                blocks.append(values[:, None])
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(rows), 0))

    def feature_names(self) -> list[str]:
        names = []
        for col in self.features:
            if col in self.categorical:
                names += [f"{col}={c}" for c in self.categories[col]]
            else:
                names.append(col)
        return names

    def to_json(self) -> str:
        return json.dumps(vars(self))

    @classmethod
    def from_json(cls, text: str) -> TableEncoder:
        state = json.loads(text)
        enc = cls(
            state["features"], state["categorical"], state["missing"], state["fill_value"], state["missing_values"]
        )
        enc.categories, enc.fills = state["categories"], state["fills"]
        return enc


def _named_labels(labels, class_names, lines, path, target):
    """Integer labels, with ``class_names`` checked to name each of them (or None)."""
    if class_names is None:
        return labels, None
    bad = np.flatnonzero((labels < 0) | (labels >= len(class_names)))
    if len(bad):
        r = int(bad[0])
        raise DnnError(
            f"{path}:{lines[r]}: target {target!r}: label {labels[r]} has no class name; class_names names"
            f" {len(class_names)} classes, labels 0..{len(class_names) - 1}."
        )
    return labels, list(class_names)


def _regression_targets(texts, lines, path, targets, limit=None) -> np.ndarray:
    """Float64 targets of a regression, each cell a finite number (at most ``limit``); never through an integer
    type."""
    y = np.empty((len(texts), len(targets)))
    for r, row in enumerate(texts):
        for c, text in enumerate(row):
            where = f"{path}:{lines[r]}: target column {targets[c]!r}"
            if text in MISSING:
                raise DnnError(f"{where} is missing a value; a regression needs a number in every row.")
            v = parse_number(text)
            if v is None:
                raise DnnError(
                    f"{where}: {not_a_number(text)}; a regression loss needs a number in every row (for class"
                    " labels, use a classification loss)."
                )
            if not math.isfinite(v):
                raise DnnError(f"{where}: {text!r} is not finite; regression targets must be finite numbers.")
            if limit is not None and abs(v) > limit:
                raise DnnError(target_overflow(f"{where} is {v:g}", limit))
            y[r, c] = v
    return y[:, 0] if len(targets) == 1 else y


def parse_targets(names, rows, lines, path, targets, class_names=None, regression=False, limit=None):
    """Target columns: integer labels, floats, or strings mapped to class indices.

    Returns (y, class_names), class_names None unless the labels were strings or ``class_names`` names the
    classes of integer labels (label k is ``class_names[k]``). ``regression``: every target is a finite number,
    returned as float64, each at most ``limit`` (the model's dtype's largest, where no target_scale rescales
    them). Messages name the file line (1-based, the header counted) and the column.
    """
    index = {n: i for i, n in enumerate(names)}
    for t in targets:
        if t not in index:
            raise DnnError(f"{path}: no target column {t!r}.{suggest(t, names)}", ("target",))
    texts = [[row[index[t]].strip() for t in targets] for row in rows]
    if regression:
        return _regression_targets(texts, lines, path, targets, limit), None
    numbers = [[parse_number(c) for c in r] for r in texts]
    # numbers that are all class names ("1", "2") are names; other integers are labels that index class_names
    by_name = class_names is not None and len(targets) == 1 and all(r[0] in class_names for r in texts)
    if not by_name and all(v is not None and math.isfinite(v) for r in numbers for v in r):
        y = np.array(numbers, dtype=np.float64)
        if len(targets) == 1:
            y = y[:, 0]
            if (y == np.round(y)).all():
                big = np.flatnonzero(np.abs(y) >= 2**53)  # past exact integers, and near int64's overflow
                if len(big):
                    r = int(big[0])
                    raise DnnError(
                        f"{path}:{lines[r]}: target {targets[0]!r}: {texts[r][0]!r} is too large to be a class label;"
                        " for values, use a regression loss (mse)."
                    )
                return _named_labels(y.astype(np.int64), class_names, lines, path, targets[0])
            if class_names is not None:
                r = int(np.flatnonzero(y != np.round(y))[0])
                raise DnnError(
                    f"{path}:{lines[r]}: target {targets[0]!r}: class_names names classes, but {texts[r][0]!r} is not"
                    " an integer label (nor a class name)."
                )
        return y, None
    if len(targets) > 1:
        for r, row in enumerate(numbers):
            for c, v in enumerate(row):
                if v is None:
                    raise DnnError(f"{path}:{lines[r]}: target {targets[c]!r}: {not_a_number(texts[r][c])}.")
                if not math.isfinite(v):
                    raise DnnError(f"{path}:{lines[r]}: target {targets[c]!r}: {texts[r][c]!r} is not finite.")
    labels = [r[0] for r in texts]
    for r, label in enumerate(labels):
        if label in MISSING:
            raise DnnError(f"{path}:{lines[r]}: target {targets[0]!r} is missing.")
    if class_names is None:
        class_names = sorted(set(labels))
    lookup = {c: k for k, c in enumerate(class_names)}
    y = np.empty(len(labels), dtype=np.int64)
    for r, label in enumerate(labels):
        if label not in lookup:
            raise DnnError(
                f"{path}:{lines[r]}: target {targets[0]!r}: {label!r} is not one of the classes"
                f" {', '.join(class_names)}."
            )
        y[r] = lookup[label]
    return y, class_names
