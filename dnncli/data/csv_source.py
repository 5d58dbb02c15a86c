"""The CSV source: a table with named target column(s), numeric features, optional one-hot categorical columns."""

from __future__ import annotations

import numpy as np

from dnncli.data.source import Dataset, Source, check_names, expand_path
from dnncli.data.split import count_classes
from dnncli.data.table import MISSING, TableEncoder, parse_targets, read_csv
from dnncli.errors import DnnError, check_bool, check_choice, check_float, suggest


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
        self.columns = check_names(columns, "columns")
        if self.columns is None and not self.header:
            raise DnnError(
                "data.columns must name the columns of a file without a header (header: false).", ("columns",)
            )
        self.target = target
        targets = check_names([target] if isinstance(target, (str, int)) else target, "target")
        if not targets:
            raise DnnError("data.target must name the target column(s) of the CSV file.", ("target",))
        self.targets = [str(t) for t in targets]
        self.drop = check_names(drop, "drop") or []
        self.categorical = check_names(categorical, "categorical") or []
        self.missing = check_choice(missing, "data.missing", ("error", "mean", "median", "constant"))
        self.fill_value = check_float(fill_value, "data.fill_value")
        self.missing_values = list(MISSING) if missing_values is None else [str(v) for v in missing_values]
        self.class_names = check_names(class_names, "class_names")
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
        path, names, rows, lines = self.read(self.path)
        # bad cells first, whatever the split
        self.encoder(names).validate(names, rows, lines, path, self.value_limit)
        lim = self.target_limit()
        y, class_names = parse_targets(names, rows, lines, path, self.targets, self.class_names, regression, lim)
        test = val = y_val = x_val = None
        if self.test_path is not None:
            tpath, tnames, trows, tlines = self.read(self.test_path)
            y_test, _ = parse_targets(tnames, trows, tlines, tpath, self.targets, class_names, regression, lim)
            if class_names is None and (regression or y.dtype != y_test.dtype):
                y, y_test = y.astype(np.float64), y_test.astype(np.float64)
            test = (tnames, trows, tlines, tpath)
        if self.validation_path is not None:
            vpath, vnames, vrows, vlines = self.read(self.validation_path)
            y_val, _ = parse_targets(vnames, vrows, vlines, vpath, self.targets, class_names, regression, lim)
            if class_names is None and (regression or y.dtype != y_val.dtype):
                y_val = y_val.astype(np.float64)
            val = (vnames, vrows, vlines, vpath)
        own = (self.test_path is not None, self.validation_path is not None)
        i_train, i_test, i_val = self.splits(y, self.split_rng(seed), seed, validation_split, *own, not regression)
        table = (names, rows, lines, path)
        train = _rows(table, i_train)
        if i_test is not None:
            test, y_test = _rows(table, i_test), y[i_test]
        if i_val is not None:
            val, y_val = _rows(table, i_val), y[i_val]
        y = y[i_train]
        # categories and fill values come from the training rows alone
        enc = self.encoder(names).fit(*train)
        x_train, x_test = enc.transform(*train), enc.transform(*test)
        if val is not None:
            x_val = enc.transform(*val)
        classes = None if regression else count_classes(np.concatenate([y, y_test]))
        if class_names is not None:
            classes = len(class_names)
        return Dataset(x_train, y, x_test, y_test, classes, class_names, enc, x_val, y_val)


def _rows(table, idx):
    """The rows of ``table`` (names, rows, lines, path) at ``idx``, their file lines kept for messages."""
    names, rows, lines, path = table
    return (names, [rows[i] for i in idx], [lines[i] for i in idx], path)
