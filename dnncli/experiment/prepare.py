"""A config's data made ready for its model: loaded, split, scaled and shaped for the loss; and its trainer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnncli import data as data_mod
from dnncli.data import augment as augment_mod
from dnncli.data.arrays import check_range, target_overflow
from dnncli.errors import DnnError, suggest, warn
from dnncli.train.threads import ThreadPolicy
from dnncli.train.trainer import Trainer


@dataclass
class PreparedData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int | None
    preparation: data_mod.Preparation
    sample_weight: np.ndarray | None = None  # one per training sample, from training.class_weight; None: all 1


def model_inputs(model, preparation, raw, where: str) -> np.ndarray:
    """Raw inputs checked (shape, finiteness, range) and scaled as in training; errors name ``where``.

    A 1-D array is one value per sample, read as ``(n, 1)`` by a model of ``input_shape: [1]``.
    """
    raw = one_feature_columns(model, raw, where)
    check_range(raw, float(np.finfo(model.dtype).max), where)
    try:
        x = model.check_inputs(raw)
    except DnnError as err:
        raise DnnError(f"{where}: {err.message}") from None
    data_mod.check_finite(x, where)
    # check_inputs copied raw unless it already had the model's dtype and layout: scale the copy in place
    return preparation.inputs.transform(x, model.dtype, in_place=not np.may_share_memory(x, raw))


def one_feature_columns(model, raw, where: str):
    """A 1-D array as ``(n, 1)`` for a model of one input feature; else refused with what would be valid."""
    if np.ndim(raw) == 0:
        raise DnnError(f"{where}: the inputs are a single value (a 0-d array); they need one row per sample.")
    if np.ndim(raw) > 1:
        return raw
    shape = tuple(model.input_shape)
    if shape == (1,):
        return np.reshape(raw, (len(raw), 1))
    k = int(np.prod(shape))
    one = f"; for one sample of {k} values, save it as shape (1, {k})" if len(raw) == k else ""
    raise DnnError(
        f"{where}: a 1-D array of {len(raw)} values is one value per sample, but the model's input_shape is"
        f" {list(shape)}; for one input feature use input_shape: [1]{one}."
    )


def to_targets(y, loss, n_outputs: int, dtype, preparation=None) -> np.ndarray:
    """Raw labels or values in the layout the loss needs (class labels become one-hot rows where it wants them)."""
    y = loss.encode_labels(y, n_outputs, dtype)
    if preparation is not None and preparation.targets is not None:
        y = preparation.targets.transform(y, np.float64)
    if not loss.classifies and np.asarray(y).dtype.kind == "f" and np.ndim(y) > 0 and len(y):
        flat = np.asarray(y).reshape(len(y), -1)
        limit = float(np.finfo(dtype).max)
        with np.errstate(invalid="ignore"):
            big = np.flatnonzero((np.abs(flat) > limit).any(axis=1))
        if len(big):
            value = flat[big[0]][np.argmax(np.abs(flat[big[0]]))]
            scaled = " once scaled" if preparation is not None and preparation.targets is not None else ""
            raise DnnError(target_overflow(f"a target is {value:g}{scaled}", limit))
    return loss.prepare_targets(y, n_outputs, dtype)


def prepare_data(config, model, loss, preparation=None) -> PreparedData:
    """Load the config's data, fit (or reuse) its preparation, scale it and split off validation."""
    source = config.build_source()
    source.value_limit = float(np.finfo(model.dtype).max)  # a CSV names the cell too large for the model
    where = source.describe()
    regression = not loss.classifies
    try:
        ds = source.load(config["seed"], regression, config["training"]["validation_split"])
    except DnnError as err:
        if not err.key or config.path is None:
            raise
        raise DnnError(f"{config.path}: data.{'.'.join(map(str, err.key))}: {err.message}", err.key) from None
    if preparation is None:
        _check_input_shape(config, model, ds.x_train, where)
        labels = np.asarray(ds.y_train)
        if loss.classifies and labels.ndim == 1 and len(labels) and (labels == labels[0]).all():
            only = ds.class_names[int(labels[0])] if ds.class_names else labels[0].item()
            warn(
                f"{where}: every training label is {only!r} (one class); the model can learn nothing but to"
                " predict it. Check the target column."
            )
        try:
            model.check_inputs(one_feature_columns(model, ds.x_train[:1], where))  # before fitting on the data
        except DnnError as err:
            raise DnnError(f"{where}: {err.message}") from None
        x_fit = ds.x_train.reshape((len(ds.x_train), *model.input_shape))
        targets = None
        if regression and source.target_scale != "none":
            targets = data_mod.Preprocessor.fit(
                source.target_scale, np.asarray(ds.y_train, np.float64).reshape(len(ds.y_train), -1)
            )
        preparation = data_mod.Preparation(
            data_mod.Preprocessor.fit(source.scale, x_fit), targets, ds.encoder, ds.class_names
        )
    n_out = int(np.prod(model.output_shape))
    try:
        x_all = model_inputs(model, preparation, ds.x_train, where)
        y_all = to_targets(ds.y_train, loss, n_out, model.dtype, preparation)
        x_test = model_inputs(model, preparation, ds.x_test, f"{where}, test split")
        y_test = to_targets(ds.y_test, loss, n_out, model.dtype, preparation)
    except DnnError as err:
        if err.message.startswith(where):
            raise
        raise DnnError(f"{where}: {err.message}") from None
    x_val = y_val = None
    if ds.x_val is not None:
        spec = config["data"]
        val_file = next((spec[k] for k in ("validation_path", "validation_x_path") if spec.get(k)), None)
        val_where = f"data ({val_file})" if val_file else f"{where}, validation split"
        try:
            x_val = model_inputs(model, preparation, ds.x_val, val_where)
            y_val = to_targets(ds.y_val, loss, n_out, model.dtype, preparation)
        except DnnError as err:
            message = err.message if err.message.startswith(val_where) else f"{val_where}: {err.message}"
            raise DnnError(message) from None
    weights = class_sample_weights(config, loss, y_all, n_out, preparation.class_names)
    return PreparedData(x_all, y_all, x_val, y_val, x_test, y_test, ds.classes, preparation, weights)


def _check_input_shape(config, model, x, where: str) -> None:
    """Samples of another shape than ``model.input_shape`` (28x28 images for [784]): a config error, with the fix."""
    sample, shape = tuple(x.shape[1:]), tuple(model.input_shape)
    if sample == shape or (len(sample) == 1 and sample[0] == int(np.prod(shape))) or (sample, shape) == ((), (1,)):
        return  # the same, or flat rows that reshape to it, or one value per sample for one input feature
    if not sample:
        raise config.error_at(
            ("model", "input_shape"),
            f"{where} holds one value per sample (a 1-D array), but the model's input_shape is {list(shape)};"
            " use input_shape: [1], or save the inputs with one row of features per sample.",
        )
    flat = model.layers[0].type_name == "flatten"
    fix = f"input_shape: {list(sample)}"
    if len(sample) > 1 and not flat:
        fix += " with a {type: flatten} first layer"
    if len(sample) > 1 and flat:
        fix += f" (the flatten layer then gives the next layer its {int(np.prod(sample))} features)"
    raise config.error_at(
        ("model", "input_shape"),
        f"{where} has samples of shape {list(sample)}, but the model's input_shape is {list(shape)}; use {fix}.",
    )


def class_sample_weights(config, loss, y, n_out: int, class_names) -> np.ndarray | None:
    """Each training sample's weight from ``training.class_weight``, or None without one.

    ``balanced``: ``n_samples / (n_classes * count)`` over the classes present (scikit-learn's
    ``compute_class_weight``); a mapping: its weight for the sample's class, 1.0 for a class it does not name.
    """
    spec = config["training"].get("class_weight")
    if spec is None:
        return None
    classes = loss.target_classes(y)
    n_classes = max(n_out, 2)
    if spec == "balanced":
        counts = np.bincount(classes, minlength=n_classes)
        present = np.count_nonzero(counts)
        per_class = np.divide(len(classes), present * counts, out=np.ones(n_classes), where=counts > 0)
    else:
        per_class = np.ones(n_classes)
        for cls, weight in spec.items():
            if isinstance(cls, str):
                if not class_names or cls not in class_names:
                    known = f" Classes: {class_names}." if class_names else " The data has no class names."
                    hint = suggest(cls, class_names or [])
                    raise config.error_at(
                        ("training", "class_weight", cls), f"{cls!r} is not a class name.{hint}{known}"
                    )
                cls = class_names.index(cls)
            per_class[cls] = weight
    return per_class[classes]


def build_trainer(config, model, loss, n_train: int, sample_weight: np.ndarray | None = None) -> Trainer:
    """The trainer of a config, as ``dnn train`` and ``dnn inspect-gradients`` both build it.

    ``sample_weight``: ``PreparedData.sample_weight``, the training samples' weights from ``class_weight``.
    """
    t = config["training"]
    trainer = Trainer(
        model, loss, config.build_optimizer(), config.batch_size(n_train), shuffle=t["shuffle"], seed=config["seed"]
    )
    trainer.sample_weight = sample_weight
    augmenter = augment_mod.build(config["data"].get("augment"))
    if augmenter.active:
        if augmenter.needs_images and len(model.input_shape) < 2:
            raise DnnError(
                "data.augment: shift and horizontal_flip need image inputs (input_shape [height, width]);"
                f" this model's input_shape is {list(model.input_shape)}."
            )
        trainer.augment = augmenter
    trainer.on_nonfinite = t["on_nonfinite"]
    trainer.threads = ThreadPolicy(t.get("threads", "auto"))
    return trainer
