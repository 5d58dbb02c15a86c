"""Evaluate and predict with a finished run: its model, its input scaling, and the loss's own view of outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnncli import data as data_mod
from dnncli.data.arrays import checked_pair, load_npy, load_npz
from dnncli.data.table import not_a_number, parse_number
from dnncli.errors import DnnError, plural
from dnncli.experiment import config as config_mod
from dnncli.experiment.prepare import model_inputs, prepare_data, to_targets
from dnncli.experiment.rundir import nonfinite_event, nonfinite_remedies
from dnncli.experiment.weights import load_weights
from dnncli.train import metrics as metrics_mod
from dnncli.train.scoring import confusion_matrix, evaluate_arrays, per_class_report


def load_run(run_dir):
    """(config, model with model.npz loaded, loss, preprocessor) of a finished run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DnnError(f"{run_dir}: no such run directory.")
    for f in ("config.yaml", "model.npz", "preprocessing.npz"):
        if not (run_dir / f).exists():
            hint = _why_no_model(run_dir) if f == "model.npz" else "."
            raise DnnError(f"{run_dir}: no {f}{hint}")
    config = config_mod.load(run_dir / "config.yaml", check_paths=False)
    model = config.build_model()
    load_weights(model, run_dir / "model.npz")
    return config, model, config.build_loss(), data_mod.Preparation.load(run_dir / "preprocessing.npz")


def _why_no_model(run_dir: Path) -> str:
    """Why a run has no model.npz, and what to do: resume it, or (stopped on non-finite values) change something."""
    stop = nonfinite_event(run_dir)
    if stop is None or _checkpoint_step(run_dir) >= stop["step"]:
        return f" (training did not finish; resume it with dnn train --resume {run_dir})."
    config = config_mod.load(run_dir / "config.yaml", check_paths=False)
    where = ""
    if stop["layer"] is not None:
        layers = config.build_model().layers
        name = f" ({layers[stop['layer']].name})" if stop["layer"] < len(layers) else ""
        where = f" of layer {stop['layer']}{name}"
    return (
        f": training stopped on non-finite values in the {stop['stage']}{where}, at epoch {stop['epoch']},"
        f" step {stop['step']}. {nonfinite_remedies(config, run_dir, stop['stage'], _advice(run_dir))}"
    )


def _advice(run_dir: Path) -> list[dict]:
    """The advice ``dnn inspect-gradients RUN_DIR`` gives, for the message of a stopped run."""
    from dnncli.experiment.inspection import inspect_run

    try:
        return inspect_run(run_dir).advice
    except DnnError:
        return []


def _checkpoint_step(run_dir: Path) -> int:
    """The step the run's checkpoint holds (-1 if it cannot be read): past a recorded stop, the run went on."""
    from dnncli.experiment.checkpoint import Checkpoint

    meta = Checkpoint.peek(run_dir / "checkpoint.npz")
    step = meta.get("step") if meta is not None else None
    return step if isinstance(step, int) else -1


def evaluate_run(run_dir, data_path=None) -> dict:
    """Loss, metrics and, for classification, the confusion matrix and per-class report."""
    config, model, loss, prep = load_run(run_dir)
    if data_path is None:
        d = prepare_data(config, model, loss, prep)
        if not len(d.x_test):
            raise DnnError(
                f"{run_dir}: the run has no test split (data.test_split: 0); pass --data FILE to evaluate it."
            )
        x, y = d.x_test, d.y_test
        source = "test split"
    else:
        x_raw, y_raw = read_labelled(data_path, config, prep, loss)
        n_out = int(np.prod(model.output_shape))
        x = model_inputs(model, prep, x_raw, str(data_path))
        y_raw = check_labels(y_raw, loss, n_out, prep, f"--data {data_path}")
        try:
            y = to_targets(y_raw, loss, n_out, model.dtype, prep)
        except DnnError as err:
            raise DnnError(f"{data_path}: {err.message}") from None
        source = str(data_path)
    result = evaluate_scored(model, loss, config["metrics"], x, y, prep)
    report = {"run_dir": str(run_dir), "data": source, "samples": len(x), **result}
    if units_undone(loss, prep):
        report["target_scale"] = config["data"]["target_scale"]
        report["units"] = {"loss": "training", "metrics": "data"}
    if loss.classifies:
        probs = loss.probabilities(model.predict(x))
        pred, labels = loss.predicted_classes(probs), loss.target_classes(y)
        if pred is None or labels is None:
            return report  # several independent labels: no single confusion matrix
        k = max(probs.shape[1], 2)
        cm = confusion_matrix(labels, pred, k)
        report["confusion_matrix"] = cm.tolist()
        report["per_class"] = per_class_report(cm)
        if prep.class_names is not None and len(prep.class_names) == k:
            for row in report["per_class"]:
                row["name"] = prep.class_names[row["class"]]
    return report


UNITS_NOTE = "metrics in the data's units (target_scale undone); loss in training units"


def units_undone(loss, prep) -> bool:
    """Whether the metrics of a regression are taken with its ``target_scale`` undone."""
    return prep.targets is not None and not loss.classifies


def evaluate_scored(model, loss, metric_names, x, y, prep, batch_size: int = 1024) -> dict:
    """Loss and metrics over (x, y); with ``data.target_scale`` the metrics in the data's units (targets and
    predictions scaled back), the loss as trained, in the scaled units."""
    with np.errstate(all="ignore"):  # a diverged model's inf is reported as a number, not as a numpy warning
        result = evaluate_arrays(model, loss, metric_names, x, y, batch_size)
        if not units_undone(loss, prep) or not metric_names:
            return result
        ms = [metrics_mod.get(name, loss) for name in metric_names]
        for start in range(0, len(x), batch_size):
            out = model.predict(x[start : start + batch_size]).astype(np.float64)
            yb = np.asarray(y[start : start + batch_size], np.float64).reshape(out.shape)
            for m in ms:
                m.update(prep.targets.inverse(yb), prep.targets.inverse(out))
    return result | {m.name: m.result() for m in ms}


def read_labelled(path, config, prep, loss) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels: an NPZ file with arrays ``x`` and ``y``, or a CSV like the training one."""
    path = Path(path)
    if path.suffix == ".csv" and prep.encoder is not None:
        source = config.build_source()
        p, names, rows, lines = source.read(str(path))
        regression = not loss.classifies
        y, seen = data_mod.parse_targets(names, rows, lines, p, source.targets, prep.class_names, regression)
        if seen is not None and prep.class_names is None:  # strings, for a run that learned integer labels
            y = np.array(seen)[y]  # as written: check_labels names those the run never saw
        return prep.encoder.transform(names, rows, lines, p), y
    if path.suffix != ".npz":
        kind = "an .npz file with arrays 'x' and 'y'" + (", or a .csv like the training file" if prep.encoder else "")
        raise DnnError(f"--data {path}: expected {kind}.")
    got = load_npz(path, ("x", "y"), where="--data ")
    return checked_pair(f"--data {path}", got["x"], got["y"], "inputs in 'x'", "labels in 'y'")


def check_labels(y, loss, n_out: int, prep, where: str) -> np.ndarray:
    """Class labels of new data checked against the run's classes; names become their class indices.

    The run's classes are its ``class_names`` (saved in ``preprocessing.npz``) or, for integer labels, 0..k-1
    for an output layer of k units (two for one sigmoid unit). A label outside them is refused, never mapped.
    """
    y = np.asarray(y)
    if not loss.classifies or y.ndim != 1 or (loss.targets == "binary" and n_out > 1):
        return y  # values, one-hot rows, or independent 0/1 labels: the loss checks them
    names = prep.class_names
    k = len(names) if names else max(n_out, 2)
    trained = f"classes {', '.join(names)}" if names else f"integer labels 0..{k - 1}"
    if y.dtype.kind in "USO":
        text = [str(v).strip() for v in y]
        lookup = {n: i for i, n in enumerate(names)} if names else {str(i): i for i in range(k)}
        unseen = sorted({t for t in text if t not in lookup})
    elif y.dtype.kind in "biuf":
        integral = y.dtype.kind != "f" or bool(np.isfinite(y).all() and (y == np.round(y)).all())
        if not integral:
            return y  # probabilities, or labels the loss refuses as not integers
        outside = (y < 0) | (y >= k)
        unseen = [str(v) for v in np.unique(y[outside]).astype(np.int64 if y.dtype.kind != "u" else np.uint64)]
        lookup = None
    else:
        raise DnnError(f"{where}: labels must be numbers or class names. Received: dtype {y.dtype}")
    if unseen:
        listed = ", ".join(unseen[:10]) + (f" and {len(unseen) - 10} more" if len(unseen) > 10 else "")
        raise DnnError(f"{where}: labels the run never saw: {listed}; it was trained on {trained}.")
    if lookup is not None:
        return np.array([lookup[t] for t in text], dtype=np.int64)
    return y


def read_inputs(path) -> np.ndarray:
    """Inputs for prediction: ``.npy``, or ``.csv`` of numbers (a first line that is not numbers is a header)."""
    path = Path(path)
    if not path.exists():
        raise DnnError(f"{path}: no such file.")
    if path.suffix == ".npy":
        return load_npy(path, 64 << 20)
    if path.suffix != ".csv":
        raise DnnError(f"{path}: expected a .csv or .npy file.")
    _names, rows, lines = data_mod.read_csv(path, header=False)
    if not all(_is_float(c) for c in rows[0]):
        rows, lines = rows[1:], lines[1:]  # a header
        if not rows:
            raise DnnError(f"{path}: no data rows (only a header line).")
    out = np.empty((len(rows), len(rows[0])))
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            v = parse_number(cell.strip())
            if v is None:
                raise DnnError(f"{path}:{lines[r]}: {not_a_number(cell.strip())}.")
            out[r, c] = v
    return out


def _is_float(text) -> bool:
    return parse_number(text.strip()) is not None


def table_inputs(source, encoder, path) -> np.ndarray:
    """The features of a CSV file in the training file's layout: its target and dropped columns may be there or not."""
    features = encoder.features
    expected = (
        f"expected columns: {', '.join(features)} (the target and dropped columns may be present; they are ignored)"
    )
    names, rows, lines = data_mod.read_csv(path, False, None, source.delimiter)
    if source.header and _is_header(rows[0], encoder, source):
        names, rows, lines = [c.strip() for c in rows[0]], rows[1:], lines[1:]
        if not rows:
            raise DnnError(f"{path}: no data rows (only a header line).")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DnnError(f"{path}: column name {dupes[0]!r} appears twice.")
        missing = [c for c in features if c not in names]
        if missing:
            raise DnnError(f"{path}: {expected}. Missing: {', '.join(missing)}")
    elif source.header:  # a first line of values: the features alone, in the training file's order
        if len(names) != len(features):
            raise DnnError(
                f"{path}: a row has {plural(len(names), 'value')} and no header line names them; the run takes the"
                f" columns {', '.join(features)}: add a header line naming them (the target and dropped columns may"
                f" be there too), or write the {len(features)} features alone, in this order."
            )
        names = features
    else:  # no header line: the columns are known by their number, with or without the target and dropped ones
        columns, ignored = source.columns, set(source.targets) | set(source.drop)
        layouts = [columns, [c for c in columns if c not in source.targets], [c for c in columns if c not in ignored]]
        layouts.append([c for c in columns if c not in source.drop])
        fitting = {tuple(layout) for layout in layouts if len(layout) == len(names)}
        if len(fitting) > 1:  # as many target as dropped columns: which ones a row left out cannot be told
            raise DnnError(
                f"{path}: {len(rows[0])} values a row fit more than one layout of the training file's columns"
                f" ({', '.join(columns)}); write all of them, or add a header line naming them."
            )
        names = list(fitting.pop()) if fitting else None
        if names is None:
            raise DnnError(
                f"{path}: {len(rows[0])} values a row; {expected}, in the training file's order"
                f" ({', '.join(columns)}; no header line)."
            )
    return encoder.transform(names, rows, lines, path)


def _is_header(first, encoder, source) -> bool:
    """Whether a predict file's first line names columns rather than holding the values of one sample."""
    cells = [c.strip() for c in first]
    if any(c in {*encoder.features, *source.targets, *source.drop} for c in cells):
        return True

    def text(c):
        return c not in encoder.missing_values and parse_number(c) is None

    if len(cells) == len(encoder.features):  # a row of the features has numbers where they are not categorical
        return any(text(c) for c, f in zip(cells, encoder.features) if f not in encoder.categorical)
    return any(text(c) for c in cells)


def predict_run(run_dir, input_path) -> tuple[list[str], list[list]]:
    """(column names, rows) of predictions for the inputs in ``input_path``."""
    config, model, loss, prep = load_run(run_dir)
    path = Path(input_path)
    if path.suffix == ".csv" and prep.encoder is not None:
        raw = table_inputs(config.build_source(), prep.encoder, path)
    else:
        raw = read_inputs(path)
    out = model.predict(model_inputs(model, prep, raw, str(path)))
    names = prep.class_names
    if loss.classifies:
        probs = loss.probabilities(out)
        classes = loss.predicted_classes(probs)
        if classes is None:  # independent labels: a probability each
            return [f"p_{k}" for k in range(probs.shape[1])], probs.tolist()
        columns = [f"p_{k}" for k in range(probs.shape[1])] if probs.shape[1] > 1 else ["p_1"]
        head = ["class"] + (["label"] if names else []) + columns
        return head, [[int(c)] + ([names[c]] if names else []) + list(map(float, p)) for c, p in zip(classes, probs)]
    if prep.targets is not None:
        out = prep.targets.inverse(out.astype(np.float64))
    return [f"y_{k}" for k in range(out.shape[1])], out.tolist()
