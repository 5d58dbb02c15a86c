"""Resolution: a config as written in, every default filled in and every value checked out (``dnn validate``'s
output, itself a valid config). Every default is declared once: engine objects (layers, optimizers, losses, ...)
in their constructors' signatures, read through their registries; the config-only sections (``training``,
callbacks, data sources) in their classes' signatures."""

from __future__ import annotations

import math
from collections.abc import Mapping

from dnncli import data
from dnncli.diagnostics.monitor import resolve_monitor
from dnncli.errors import DnnError, check_bool, check_choice, check_float, check_int, suggest
from dnncli.experiment.expect.spec import resolve_expect
from dnncli.nn import losses, optimizers
from dnncli.nn.model import DTYPES, Sequential, layer_names
from dnncli.registry import build_section, section_config
from dnncli.train import callbacks, metrics

TOP_KEYS = ("name", "seed", "dtype", "data", "model", "loss", "metrics", "optimizer", "training", "monitor", "expect")
BATCHING = ("batch", "stochastic", "mini-batch")
VALIDATION_FILES = ("validation_path", "validation_x_path")


class TrainingSettings:
    """The ``training:`` section.

    Parameters
    ----------
    epochs : int, default=10
        Passes over the training set.
    batching : {"mini-batch", "batch", "stochastic"}, default="mini-batch"
        batch: the whole training set per update; stochastic: one sample; mini-batch: ``batch_size`` samples.
    batch_size : int, default=32
        Samples per update in mini-batch mode (batch and stochastic ignore it, and say so).
    shuffle : bool, default=True
        Permute the training set every epoch (seeded).
    validation_split : float, default=0.0
        Fraction of the training set held out for the ``val_`` metrics.
    on_nonfinite : {"stop", "skip_batch"}, default="stop"
        A NaN or infinity in a batch's loss or gradients: stop (exit 3), or skip the batch (no update; counted).
    callbacks : mapping or None, default=None
        ``early_stopping``, ``reduce_lr_on_plateau``, ``model_checkpoint``.
    tensorboard : bool, default=False
        Write TensorBoard event files under ``RUN_DIR/tensorboard/`` (needs the ``tensorboard`` extra).
    class_weight : "balanced", mapping or None, default=None
        Weight of each class's samples in the training loss, as Keras's ``fit(class_weight=...)``: ``{0: 1.0, 1: 5.0}``
        (classes by index, or by name where the data has class names; a class not named weighs 1.0), or
        ``balanced``: ``n_samples / (n_classes * count)`` of the training split, as scikit-learn's.
    threads : "auto" or int, default="auto"
        BLAS threads for the matrix products: ``auto`` chooses while training (at most the CPUs this process may use,
        its affinity and cgroup quota, the step timed at one thread fewer and the faster kept), a number fixes it
        (``--threads N`` on the command line). It changes the speed and the last bits of the numbers (a product
        split over threads rounds in another order), not the experiment: a run may be resumed with another count.
    """

    def __init__(
        self,
        epochs: int = 10,
        batching: str = "mini-batch",
        batch_size: int = 32,
        shuffle: bool = True,
        validation_split: float = 0.0,
        on_nonfinite: str = "stop",
        callbacks=None,
        tensorboard: bool = False,
        class_weight=None,
        threads="auto",
    ):
        self.epochs = check_int(epochs, "training.epochs", 1)
        self.batching = check_choice(batching, "training.batching", BATCHING)
        self.batch_size = check_int(batch_size, "training.batch_size", 1)
        self.shuffle = check_bool(shuffle, "training.shuffle")
        self.validation_split = check_float(validation_split, "training.validation_split", 0.0, 1.0, high_open=True)
        self.on_nonfinite = check_choice(on_nonfinite, "training.on_nonfinite", ("stop", "skip_batch"))
        self.callbacks = {} if callbacks is None else callbacks
        self.tensorboard = check_bool(tensorboard, "training.tensorboard")
        self.class_weight = _check_class_weight(class_weight)
        self.threads = _check_threads(threads)


def _check_threads(threads):
    """``auto``, or a count of threads >= 1."""
    try:
        if isinstance(threads, str):
            return check_choice(threads, "training.threads", ("auto",))
        return check_int(threads, "training.threads", 1)
    except DnnError:
        raise DnnError(
            f"training.threads must be auto or a number of threads (1 or more). Received: {threads!r}", ("threads",)
        ) from None


def _check_class_weight(value):
    """``balanced``, None, or a mapping of class (index or name) to a finite weight >= 0."""
    if value is None or value == "balanced":
        return value
    if not isinstance(value, Mapping) or not value:
        raise DnnError(
            "training.class_weight must be balanced or a mapping of class to weight, such as {0: 1.0, 1: 5.0}."
            f" Received: {value!r}",
            ("class_weight",),
        )
    out = {}
    for cls, weight in value.items():
        if isinstance(cls, bool) or not isinstance(cls, (int, str)):
            raise DnnError(
                f"training.class_weight: a class is an integer label or a class name. Received: {cls!r}",
                ("class_weight", cls),
            )
        try:
            out[cls] = check_float(weight, f"training.class_weight.{cls}", 0.0)
        except DnnError as err:
            raise DnnError(err.message, ("class_weight", cls)) from None
    return out


def resolve(mapping: Mapping, default_name: str = "experiment", check_paths: bool = True) -> dict:
    """Validate a config mapping and return it with every default filled in."""
    for key in mapping:
        if key not in TOP_KEYS:
            raise DnnError(f"unknown key {key!r}.{suggest(key, TOP_KEYS)}", (key,))
    raw: dict = {}
    name = mapping.get("name", default_name)
    if not isinstance(name, str) or not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise DnnError(
            f"name must be a plain, non-empty string (it names the run directory). Received: {name!r}", ("name",)
        )
    raw["name"] = name
    seed = mapping.get("seed", 0)
    try:
        raw["seed"] = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
    except DnnError as err:
        raise DnnError(err.message, ("seed",)) from None
    dtype = mapping.get("dtype", "float32")
    if dtype not in DTYPES:
        raise DnnError(f"dtype must be one of {', '.join(DTYPES)}. Received: {dtype!r}", ("dtype",))
    raw["dtype"] = dtype

    raw["data"] = data.resolve_spec(mapping.get("data"), check_paths)

    if "model" not in mapping:
        raise DnnError("the config needs a 'model' section (input_shape and layers).", ("model",))
    model_spec = mapping["model"]
    if not isinstance(model_spec, Mapping):
        raise DnnError(f"model must be a mapping. Received: {model_spec!r}", ("model",))
    for key in model_spec:
        if key not in ("input_shape", "layers"):
            raise DnnError(f"model has no key {key!r}.{suggest(key, ('input_shape', 'layers'))}", ("model", key))
    for key in ("input_shape", "layers"):
        if key not in model_spec:
            raise DnnError(f"model needs {key!r}.", ("model",))
    try:
        # checked, and every default filled in, without allocating or initializing a weight: built once, later
        raw["model"], output_shape = Sequential.resolve(model_spec["layers"], model_spec["input_shape"], dtype)
    except DnnError as err:
        raise err.at("model") from None

    if "loss" not in mapping:
        raise DnnError("the config needs a 'loss' (for example sparse_categorical_crossentropy or mse).", ("loss",))
    loss = losses.get(mapping["loss"], "loss")
    raw["loss"] = loss.get_config()
    raw["metrics"] = metrics.resolve_names(mapping.get("metrics", []), loss, output_shape[0])

    opt_spec = mapping.get("optimizer", "adam")
    raw["optimizer"] = optimizers.get(opt_spec, "optimizer").get_config()

    try:
        training = section_config(build_section(TrainingSettings, mapping.get("training"), "training"))
    except DnnError as err:
        raise err.at("training") from None
    training["callbacks"] = callbacks.resolve_specs(training["callbacks"], raw["optimizer"])
    raw["training"] = training
    raw["monitor"] = resolve_monitor(mapping.get("monitor"))
    _check_task(raw, loss, output_shape)
    if "expect" in mapping:  # absent: no expectations, and nothing written (runs from before it resume as they were)
        try:
            raw["expect"] = resolve_expect(
                mapping["expect"], logged_columns(raw), raw["metrics"], layer_names(raw["model"]["layers"])
            )
        except DnnError as err:
            raise err.at("expect") from None
    return raw


def logged_columns(raw: dict) -> list[str]:
    """The history columns a run of a resolved config logs that a callback's ``monitor``, a sweep's ``metric`` or an
    expectation can name: the loss, its parts and the metrics, then, where the run has a validation set (a split or
    a file), their ``val_`` values."""
    metrics, data = raw["metrics"], raw["data"]
    names = ["loss", "data_loss", "penalty", *metrics]
    if raw["training"]["validation_split"] > 0 or any(data.get(k) is not None for k in VALIDATION_FILES):
        names += ["val_loss", *[f"val_{m}" for m in metrics]]
    return names


def output_activation(raw: dict) -> str | None:
    """The name of the output layer's activation (``linear`` for none), or None for a layer without one."""
    act = raw["model"]["layers"][-1].get("activation")
    return act.get("name") if isinstance(act, Mapping) else None


def _check_task(raw: dict, loss, output_shape) -> None:
    """Refuse what the loss, the output layer and the data's classes cannot mean together."""
    n_out = int(math.prod(output_shape))
    n_classes = n_out if n_out > 1 else 2  # one sigmoid unit: two classes
    if loss.targets == "binary" and output_activation(raw) == "softmax" and n_out > 1:
        other = (
            " or one sigmoid unit (units: 1, activation: sigmoid) with binary_crossentropy"
            if n_out == 2
            else " or, for independent 0/1 labels, activation: sigmoid"
        )
        raise DnnError(
            f"{loss.name} scores each of the {n_out} softmax outputs as an independent 0/1 label, but softmax"
            f" makes them compete; use sparse_categorical_crossentropy with the {n_out}-unit softmax (integer"
            f" labels),{other}.",
            ("loss",),
        )
    names = raw["data"].get("class_names")
    if names is not None:
        if not loss.classifies:
            raise DnnError(
                f"class_names applies to classification targets only, and loss {loss.name!r} regresses values;"
                " remove class_names, or use a classification loss.",
                ("data", "class_names"),
            )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DnnError(
                f"class_names lists {twice[0]!r} twice; each class needs its own name. Received: {names}",
                ("data", "class_names"),
            )
        if len(names) != n_classes:
            raise DnnError(
                f"class_names lists {len(names)} classes, but the output layer's {n_out} unit(s) stand for"
                f" {n_classes}. Received: {names}",
                ("data", "class_names"),
            )
    weights = raw["training"]["class_weight"]
    if weights is not None:
        key = ("training", "class_weight")
        if not loss.classifies:
            raise DnnError(
                f"class_weight weighs the samples of each class, and loss {loss.name!r} regresses values;"
                " class_weight applies to classification losses only.",
                key,
            )
        if loss.targets == "binary" and n_out > 1:
            raise DnnError(
                f"class_weight needs one class per sample, and {loss.name} on {n_out} output units scores independent"
                " labels; use one sigmoid unit, or a softmax with sparse_categorical_crossentropy.",
                key,
            )
        for cls in weights if isinstance(weights, Mapping) else ():
            if isinstance(cls, int) and not 0 <= cls < n_classes:
                raise DnnError(
                    f"class {cls} is not one of the model's {n_classes} classes (0..{n_classes - 1}).", (*key, cls)
                )
            if isinstance(cls, str) and names is not None and cls not in names:
                raise DnnError(f"{cls!r} is not a class name.{suggest(cls, names)} Classes: {names}", (*key, cls))
            if isinstance(cls, str) and names is None and raw["data"]["source"] != "csv":
                raise DnnError(
                    f"a class named {cls!r}, but this data has no class names; give the class's integer label.",
                    (*key, cls),
                )
    given = next((k for k in VALIDATION_FILES if raw["data"].get(k) is not None), None)
    split = raw["training"]["validation_split"]
    if given is not None and split > 0:
        raise DnnError(
            f"data.{given} and training.validation_split both choose the validation set; give one."
            f" Received: validation_split={split}",
            ("data", given),
        )
