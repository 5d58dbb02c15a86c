"""``dnn init``: a commented starter config for the user's own table (CSV) or arrays (NPZ), which ``dnn train`` runs
as it is.

The table is read as the tool reads it: its columns, which hold numbers and which hold text, its missing cells; the
target is the column named ``--target``, else one whose name says so (``target``, ``label``, ``class``, ...), else
the last; the task follows from it (text or a few integer labels 0..k-1: classification). Then the data section is
loaded through the CSV (or NPZ) source itself, so the input shape is what the one-hot encoding really gives and the
classes are what training will count, and the whole config is resolved before it is written. Every choice is said in
a comment beside it and in the lines returned to the user.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dnncli.data import build_source, catalog, resolve_spec
from dnncli.data.table import MISSING, parse_number
from dnncli.errors import DnnError, plural
from dnncli.experiment.modeline import modeline
from dnncli.experiment.resolve import resolve
from dnncli.files import atomic_write, check_target, exists_already

TASKS = ("classification", "regression")
TARGET_WORDS = r"(^|_)(target|label|labels|class|outcome|y|diagnosis|species|quality|price|value|income|churn|mpg)$"
MAX_CLASSES = 50  # integer labels 0..k-1 with at most this many values: classes; more, a quantity to regress
SAMPLE_ROWS = 2000  # rows read to judge the columns (the source reads them all when the config is checked)


@dataclass
class Choice:
    """The data section chosen, and why (one line per choice, said to the user and written as comments)."""

    data: dict
    task: str
    said: dict = field(default_factory=dict)  # data key -> why


def _scalar(value) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip().removesuffix("...").strip()
    )


def _sniff(path: Path) -> tuple[str, bool, list[str], list[list[str]]]:
    """(delimiter, header, column names, the first rows) of a CSV file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read(1 << 20)
    except FileNotFoundError:
        raise DnnError(f"--data {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DnnError(f"--data {path}: cannot read as CSV ({err}).") from None
    lines = [ln for ln in text.splitlines() if ln.strip()][:SAMPLE_ROWS]
    if not lines:
        raise DnnError(f"--data {path}: the file is empty.")
    delimiter = max(",;\t|", key=lambda d: min(ln.count(d) for ln in lines[:20]))
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)]
    first = rows[0]
    numeric_below = any(parse_number(c) is not None for r in rows[1:3] for c in r)
    header = all(parse_number(c) is None for c in first) and (numeric_below or len(rows) == 1)
    names = first if header else [str(i) for i in range(len(first))]
    return delimiter, header, names, rows[1:] if header else rows


def _columns(names, rows) -> dict[str, dict]:
    """Each column: whether its present cells are numbers, integers, its distinct values, whether cells are missing."""
    out = {}
    for j, name in enumerate(names):
        cells = [r[j] if j < len(r) else "" for r in rows]
        present = [c for c in cells if c not in MISSING]
        numbers = [parse_number(c) for c in present]
        numeric = bool(present) and all(v is not None and math.isfinite(v) for v in numbers)
        out[name] = {
            "numeric": numeric,
            "integer": numeric and all(float(v).is_integer() for v in numbers),
            "values": set(present),
            "missing": len(present) < len(cells),
            "numbers": numbers if numeric else [],
        }
    return out


def _guess_target(names: list[str], columns: dict, target: str | None) -> tuple[str, str]:
    if target is not None:
        if target not in names:
            raise DnnError(f"--target {target!r} is not a column. Columns: {', '.join(names)}.")
        return target, "given by --target"
    named = [n for n in names if re.search(TARGET_WORDS, n.lower())]
    if named:
        return named[-1], "its name says so"
    labels = [n for n in names if not columns[n]["numeric"] and 1 < len(columns[n]["values"]) <= MAX_CLASSES]
    if len(labels) == 1:
        return labels[0], "the one column of a few text labels"
    return names[-1], "the last column"


def _task(col: dict, task: str | None) -> tuple[str, str]:
    if task is not None:
        return task, "given by --task"
    if not col["numeric"]:
        return "classification", f"{plural(len(col['values']), 'label')} written as text"
    values = sorted({int(v) for v in col["numbers"]}) if col["integer"] else []
    if values and values[0] >= 0 and values[-1] < MAX_CLASSES and len(values) == values[-1] + 1:
        return "classification", f"integer labels 0..{values[-1]}"
    return "regression", "numbers, not class labels 0..k-1"


def _scale(values: list[float], n_features: int) -> tuple[object, str]:
    low, high = min(values, default=0.0), max(values, default=0.0)
    if low >= 0.0 and high <= 1.0:
        return "none", "the features lie in [0, 1] already"
    if low >= 0 and high <= 255 and n_features >= 64 and all(float(v).is_integer() for v in values[:10000]):
        return 255, "pixel-like values 0..255: divided by 255"
    return "standardize", f"features from {low:.4g} to {high:.4g}: each standardized on the training split"


def _csv_choice(path: Path, written: str, target: str | None, task: str | None) -> Choice:
    delimiter, header, names, rows = _sniff(path)
    columns = _columns(names, rows)
    target, why = _guess_target(names, columns, target)
    task, task_why = _task(columns[target], task)
    data: dict = {"source": "csv", "path": written, "target": target}
    said = {"target": f"{target}: {why}; the task: {task} ({task_why})"}
    if not header:
        data["header"] = False
        data["columns"] = names
        said["columns"] = "the file has no header line: its columns are numbered"
    if delimiter != ",":
        data["delimiter"] = delimiter
        said["delimiter"] = f"cells separated by {delimiter!r}"
    features = [n for n in names if n != target]
    n = len(rows)
    drop = [c for c in features if not columns[c]["numeric"] and len(columns[c]["values"]) > max(20, n // 2)]
    drop += [
        c
        for c in features[:1]
        if columns[c]["integer"] and len(columns[c]["values"]) == n and (c.lower() in ("id", "0") or not header)
    ]
    if drop:
        data["drop"] = drop
        said["drop"] = "identifiers or free text (a different value in most rows), no feature"
    categorical = [c for c in features if c not in drop and not columns[c]["numeric"]]
    if categorical:
        data["categorical"] = categorical
        said["categorical"] = "text columns, one-hot encoded with the training split's categories"
    kept = [c for c in features if c not in drop]
    if any(columns[c]["missing"] for c in kept):
        data["missing"] = "median"
        gaps = [c for c in kept if columns[c]["missing"]]
        said["missing"] = f"cells missing in {', '.join(gaps[:4])}{' ...' if len(gaps) > 4 else ''}: filled"
    numbers = [v for c in kept if columns[c]["numeric"] for v in columns[c]["numbers"] if v is not None]
    data["scale"], said["scale"] = _scale(numbers, len(kept))
    if task == "regression":
        ys = [v for v in columns[target]["numbers"] if v is not None]
        if ys and max(abs(v) for v in ys) > 10:
            data["target_scale"] = "standardize"
            said["target_scale"] = (
                f"targets up to {max(abs(v) for v in ys):.4g}: standardized for training; eval and predict report"
                " them in the data's units"
            )
    return Choice(data, task, said)


def _npz_choice(path: Path, written: str, task: str | None) -> Choice:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.files)
            x_key = "x" if "x" in keys else keys[0] if keys else None
            y_key = "y" if "y" in keys else next((k for k in keys if k != x_key), None)
            if x_key is None or y_key is None:
                raise DnnError(f"--data {path}: needs two arrays, inputs and targets (x and y). Holds: {keys}.")
            x, y = f[x_key], f[y_key]
    except (OSError, ValueError) as err:
        raise DnnError(f"--data {path}: cannot read as NPZ ({err}).") from None
    data: dict = {"source": "npz", "path": written}
    said = {}
    if (x_key, y_key) != ("x", "y"):
        data["x_key"], data["y_key"] = x_key, y_key
        said["x_key"] = f"inputs {x_key!r}, targets {y_key!r}"
    if task is None:
        ints = np.issubdtype(y.dtype, np.integer) and y.ndim == 1 and y.size and y.min() >= 0
        task = "classification" if ints and int(y.max()) < MAX_CLASSES else "regression"
        said["path"] = f"targets {y.dtype} of shape {list(y.shape)}: {task}"
    sample = x.reshape(len(x), -1)[:SAMPLE_ROWS].astype(np.float64)
    width = sample.shape[1] if sample.ndim == 2 else 1
    data["scale"], said["scale"] = _scale(sample.ravel().tolist(), width)
    if task == "regression" and y.size and float(np.abs(y).max()) > 10:
        data["target_scale"] = "standardize"
        said["target_scale"] = "targets beyond 10: standardized for training"
    return Choice(data, task, said)


def _written_path(path: Path, config_at: Path) -> tuple[str, str]:
    """The data path as the config writes it: ``$DNN_DATASETS/<name>/<file>`` where the dataset rule finds this
    very file from the config's folder (portable, as the shipped configs), else the path from the working
    directory (where dnn resolves a relative path)."""
    path = path.resolve()
    reference = f"${catalog.VARIABLE}/{path.parent.name}/{path.name}"
    try:
        if catalog.locate(reference, [config_at.resolve().parent]).resolve() == path:
            return reference, "found by the dataset rule ($DNN_DATASETS, else data/ beside the config)"
    except DnnError:
        pass
    try:
        relative = path.relative_to(Path.cwd())
        return relative.as_posix(), "relative to the directory dnn runs from"
    except ValueError:
        return str(path), "an absolute path"


def _model(task: str, n_features: int, classes: int | None, flat: bool) -> tuple[list[dict], object, list[str]]:
    units = min(128, max(16, 2 ** math.ceil(math.log2(max(2 * n_features, 2)))))
    hidden = {"type": "dense", "units": units, "activation": "relu", "kernel_initializer": "he_normal"}
    layers = ([] if flat else [{"type": "flatten"}]) + [hidden, dict(hidden)]
    if task == "regression":
        return [*layers, {"type": "dense", "units": 1}], "mse", ["mae", "rmse"]
    if classes is not None and classes <= 2:
        out = {"type": "dense", "units": 1, "activation": "sigmoid"}
        return [*layers, out], "binary_crossentropy", ["accuracy", "auc"]
    out = {"type": "dense", "units": int(classes or 2), "activation": "softmax"}
    return [*layers, out], "sparse_categorical_crossentropy", ["accuracy"]


def starter_config(data: Path | None, at: Path, task: str | None = None, target: str | None = None):
    """(the config's text, the lines said to the user) for ``data`` (a CSV or NPZ file; None: the synthetic
    spirals), to be written at ``at``."""
    if task is not None and task not in TASKS:
        raise DnnError(f"--task must be one of {', '.join(TASKS)}. Received: {task!r}")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", (data or at).stem).strip("_.") or "experiment"
    if data is None:
        regression = task == "regression"
        choice = Choice({"source": "synthetic", "generator": "regression" if regression else "spirals"}, task or "")
        choice.task = "regression" if regression else "classification"
        choice.said["generator"] = "no --data: generated samples; point data at your file (source: csv or npz)"
        where = ""
    else:
        if not data.is_file():
            raise DnnError(f"--data {data}: no such file.")
        written, where = _written_path(data, at)
        suffix = data.suffix.lower()
        if suffix == ".npz":
            choice = _npz_choice(data, written, task)
        elif suffix in (".csv", ".data", ".txt", ".tsv"):
            choice = _csv_choice(data, written, target, task)
        else:
            raise DnnError(f"--data {data}: a CSV or NPZ file is needed (dnn init reads .csv, .data, .txt, .npz).")
    regression = choice.task == "regression"
    spec = resolve_spec(choice.data)
    source = build_source(spec, [at.resolve().parent])
    dataset = source.load(0, regression=regression)
    shape = list(dataset.x_train.shape[1:]) or [1]
    classes = None if regression else (len(dataset.class_names) if dataset.class_names else dataset.classes)
    layers, loss, metrics = _model(choice.task, math.prod(shape), classes, len(shape) == 1)
    n_train = len(dataset.x_train)
    mapping = {
        "name": name,
        "seed": 0,
        "data": choice.data,
        "model": {"input_shape": shape, "layers": layers},
        "loss": loss,
        "metrics": metrics,
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "training": {
            "epochs": 50,
            "batch_size": 32 if n_train < 10000 else 128,
            "validation_split": 0.2,
            "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 10, "restore_best_weights": True}},
        },
    }
    resolve(mapping, default_name=name)  # what dnn train will take, or the error now
    what = f"{plural(n_train, 'training sample')} of shape {shape}"
    task_said = f"{choice.task}" + (f", {classes} classes" if classes else "")
    said = [f"{k}: {v}" for k, v in choice.said.items()]
    if where:
        said.insert(0, f"path: {choice.data['path']} ({where})")
    comments = {
        "data": [*(f"{k}: {v}" for k, v in choice.said.items()), *([f"path: {where}"] if where else [])],
        "model": [f"{what} ({task_said}); two relu layers sized to the {math.prod(shape)} inputs"],
        "loss": ["the output layer and the loss follow from the target: " + _output_words(loss)],
        "training": ["stops when val_loss has not improved for 10 epochs, keeping the best epoch's weights"],
    }
    text = _text(mapping, comments, at, data)
    return text, [*said, f"model: {what}; {task_said}; loss {loss}"]


def _output_words(loss: str) -> str:
    return {
        "mse": "one linear unit, mean squared error",
        "binary_crossentropy": "one sigmoid unit (two classes), binary cross-entropy",
        "sparse_categorical_crossentropy": "a softmax unit per class, integer labels",
    }[loss]


def _text(mapping: dict, comments: dict, at: Path, data: Path | None) -> str:
    source = f" for {data.name}" if data is not None else ""
    lines = [
        modeline(at),
        f"# A starter config{source}, written by dnn init: train it with  dnn train {at}",
        "# Every key and its default: dnn validate on this file; the schema above completes them in your editor.",
    ]
    for key, value in mapping.items():
        for note in comments.get(key, []):
            lines.append(f"# {note}")
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for k, v in value.items():
                if k == "layers":
                    lines.append(f"  {k}:")
                    lines += [f"    - {_scalar(layer)}" for layer in v]
                elif k == "callbacks":
                    lines.append(f"  {k}:")
                    lines += [f"    {name}: {_scalar(args)}" for name, args in v.items()]
                else:
                    lines.append(f"  {k}: {_scalar(v)}")
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def write_starter(out: Path, data: Path | None, task: str | None, target: str | None, force: bool) -> list[str]:
    """Write the starter config at ``out`` (never over a file without ``force``); the lines to say."""
    check_target(out, force, "CONFIG")
    text, said = starter_config(data, out, task, target)
    try:
        atomic_write(out, lambda f: f.write(text), binary=False, exclusive=not force)
    except FileExistsError:  # made since the check
        raise exists_already(out, "CONFIG") from None
    return said
