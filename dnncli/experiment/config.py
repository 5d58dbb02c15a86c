"""Experiment configs: YAML in, a fully resolved and validated config out.

Every default is declared once: engine objects (layers, optimizers, losses,
...) in their constructors' signatures, read through their registries; the
config-only sections (``training``, callbacks, data sources) in the
``Section`` tables below or their classes' signatures. Resolution fills in
every default, so ``dnn validate`` can print a config that is itself valid.

Errors keep the dotted key path of the offending value; ``locate`` turns it
into ``file:line`` using the YAML node tree.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from dnncli import data
from dnncli.diagnostics.monitor import resolve_monitor
from dnncli.errors import DnnError, check_bool, check_choice, check_float, check_int, suggest, warn
from dnncli.nn import losses, optimizers
from dnncli.nn.model import DTYPES, Sequential
from dnncli.registry import build_section, section_config
from dnncli.train import callbacks, metrics

TOP_KEYS = ("name", "seed", "dtype", "data", "model", "loss", "metrics", "optimizer", "training", "monitor")
BATCHING = ("batch", "stochastic", "mini-batch")


class Loader(yaml.SafeLoader):
    """YAML with 1.2's floats: ``1e-3`` is a number (PyYAML's 1.1 rules read it as a string)."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str):
    return yaml.load(text, Loader=Loader)


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


@dataclass
class Config:
    """A resolved config: ``raw`` holds the resolved mapping, every default filled in."""

    raw: dict
    path: Path | None = None
    source: dict | None = None  # the mapping as written, overrides applied, before defaults were filled in
    origin: Path | None = None  # the config file a run was started from (the first line of its config.yaml)
    overridden: tuple = ()  # the key paths --set gave a value

    def __getitem__(self, key):
        return self.raw[key]

    @property
    def name(self) -> str:
        return self.raw["name"]

    def error_at(self, key: tuple, message: str) -> DnnError:
        """A config error found after loading (with the data in hand): ``file:line: dotted.key: message``."""
        lines: dict = {}
        # a file changed or gone since it was loaded gives the key alone
        with contextlib.suppress(DnnError):
            lines = read_config_file(self.path)[1] if self.path is not None else {}
        return locate(DnnError(message, key), self.path or "config", lines, list(self.overridden))

    def build_model(self) -> Sequential:
        return Sequential(
            self.raw["model"]["layers"],
            self.raw["model"]["input_shape"],
            dtype=self.raw["dtype"],
            seed=self.raw["seed"],
        )

    def build_loss(self):
        return losses.get(self.raw["loss"])

    def build_source(self):
        """The data source; ``$DNN_DATASETS/...`` paths are looked for from this config's folder, then from the
        folder of the config its run was started from."""
        folders = [p.parent for p in (self.path, self.origin) if p is not None]
        return data.build_source(self.raw["data"], folders)

    def build_optimizer(self):
        return optimizers.get(self.raw["optimizer"])

    def batch_size(self, n_train: int) -> int:
        t = self.raw["training"]
        return {"batch": max(n_train, 1), "stochastic": 1}.get(t["batching"], t["batch_size"])

    def replaced(self, key: tuple, value) -> Config:
        """A copy with one resolved value changed (``("training", "epochs")``); this config stays as it is."""
        raw, source = _plain_copy(self.raw), _plain_copy(self.source if self.source is not None else self.raw)
        for mapping in (raw, source):
            node = mapping
            for part in key[:-1]:
                node = node.setdefault(part, {})
            node[key[-1]] = value
        return Config(raw, self.path, source, self.origin)

    def with_overrides(self, overrides: list[str]) -> Config:
        """This config with ``--set`` overrides applied to it as written, resolved again."""
        mapping = apply_overrides(self.source if self.source is not None else self.raw, overrides)
        try:
            raw = resolve(mapping, default_name=self.name, check_paths=False)
        except DnnError as err:
            dotted = ".".join(str(k) for k in err.key)
            raise DnnError(
                f"{self.path or 'config'}: {dotted + ': ' if dotted else ''}{err.message}", err.key
            ) from None
        return Config(raw, self.path, mapping, self.origin)

    def to_yaml(self, origin: Path | None = None) -> str:
        """The resolved config as YAML; ``origin``: the config file a run starts from, said in a first comment line
        that ``load`` reads back (so a run directory anywhere finds the data beside that config)."""
        text = yaml.safe_dump(self.raw, sort_keys=False, default_flow_style=None, width=100)
        batching = self.raw["training"]["batching"]
        if batching != "mini-batch":
            # the value stays (a resumed run compares it), and the line says what happens instead
            every = "the whole training split" if batching == "batch" else "one sample"
            text = re.sub(
                r"(\n  batch_size: [^\n]*)\n",
                lambda m: f"{m.group(1)}  # ignored: batching: {batching} updates on {every}\n",
                text,
                count=1,
            )
        return f"{ORIGIN}{Path(origin).resolve()}\n{text}" if origin is not None else text


# loading -------------------------------------------------------------------------
ORIGIN = "# trained from: "
MAX_BYTES = 4 << 20  # a config larger than this is refused before it is parsed
MAX_DEPTH = 100  # nesting levels
MAX_NODES = 100_000  # nodes the document stands for once every alias is expanded


def read_config_file(path) -> tuple[dict, dict]:
    """Parse a YAML config; return (mapping, {key path: line number}).

    A file larger than ``MAX_BYTES``, not UTF-8, nested deeper than ``MAX_DEPTH``, or whose aliases expand
    to more than ``MAX_NODES`` nodes (a "billion laughs" document of a few hundred bytes) is refused, with
    the limit and the place, before anything is composed, copied or walked.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DnnError(f"{path}: {size / 2**20:.1f} MiB; a config may be {MAX_BYTES >> 20} MiB at most.")
        data = path.read_bytes()
    except FileNotFoundError:
        raise DnnError(f"{path}: no such config file.") from None
    except IsADirectoryError:
        raise DnnError(f"{path}: a directory, not a config file.") from None
    except OSError as err:
        raise DnnError(f"{path}: cannot read ({err.strerror}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DnnError(
            f"{path}: not UTF-8 text: byte {err.start} (0x{data[err.start]:02x}) cannot be decoded;"
            " save the file as UTF-8."
        ) from None
    try:
        _check_size(text, path)
        node = yaml.compose(text, Loader=Loader)
        mapping = parse_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise DnnError(f"{where}: not valid YAML: {problem}.") from None
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise DnnError(f"{path}: a config must be a YAML mapping (key: value lines).")
    lines: dict[tuple, int] = {}
    _walk(node, (), lines)
    return mapping, lines


def _check_size(text: str, path) -> None:
    """Count nesting and alias-expanded nodes from the parser's events: one pass, no recursion, no expansion."""
    anchors: dict[str, int] = {}  # anchor -> nodes its value stands for
    stack: list[list] = [[0, None]]  # per open collection: [nodes so far, its anchor]
    total = 0
    for event in yaml.parse(text, Loader=Loader):
        line = event.start_mark.line + 1
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([1, event.anchor])
            if len(stack) - 1 > MAX_DEPTH:
                raise DnnError(f"{path}:{line}: nested deeper than {MAX_DEPTH} levels; a config is a few levels deep.")
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            count, anchor = stack.pop()
            if anchor is not None:
                anchors[anchor] = count
        elif isinstance(event, yaml.ScalarEvent):
            count = 1
            if event.anchor is not None:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            count = anchors.get(event.anchor, 1)
        else:
            continue
        stack[-1][0] += count
        total += count
        if stack[-1][0] > MAX_NODES or total > MAX_NODES:
            raise DnnError(
                f"{path}:{line}: the document expands to more than {MAX_NODES:,} values"
                f"{f' (at *{event.anchor})' if isinstance(event, yaml.AliasEvent) else ''};"
                " aliases may share a value, not multiply it without bound."
            )


def _walk(node, path: tuple, lines: dict) -> None:
    if node is None:
        return
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            _walk(value, (*path, k), lines)
            lines[(*path, k)] = key.start_mark.line + 1  # the key's line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


def apply_overrides(mapping: dict, overrides: list[str], touched: list | None = None) -> dict:
    """Apply ``key.path=value`` overrides, in order (value parsed as YAML; list items by index).

    A ``*`` part stands for every item of a list (or every key of a mapping):
    ``model.layers.*.activation=relu`` sets the activation of every layer that
    has one, and leaves the others alone. A pattern that matches nothing is an error.
    ``touched`` collects the key paths that were set (indices as numbers).
    """
    # a plain copy: YAML anchors make one object of several places, and an override of one place must not
    # change the others (copy.deepcopy would keep them shared)
    mapping = _plain_copy(mapping)
    touched = [] if touched is None else touched
    for item in overrides or []:
        if "=" not in item:
            raise DnnError(f"--set needs key.path=value. Received: {item!r}")
        dotted, text = item.split("=", 1)
        dotted = dotted.strip()
        parts = dotted.split(".")
        if not all(parts):
            raise DnnError(f"--set: bad key path {dotted!r}.")
        try:
            _check_size(text, f"--set {dotted}")
            value = parse_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            raise DnnError(f"--set {dotted}: the value {text!r} is not valid YAML.") from None
        if _assign(mapping, parts, 0, value, True, (), touched) == 0:
            star = parts.index("*")
            raise DnnError(f"--set {dotted}: matches nothing: {_why_nothing(mapping, parts, star)}")
    return mapping


def _plain_copy(value):
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    return value


def _assign(target, parts: list[str], depth: int, value, strict: bool, path: tuple, touched: list) -> int:
    """Set ``parts[depth:]`` below ``target`` (at key path ``path``); return how many places were set.

    ``strict`` (no ``*`` seen yet): missing mappings are created and a bad index is an error.
    Below a ``*``: only paths that exist are set.
    """
    part, last = parts[depth], depth == len(parts) - 1
    if part == "*":
        if not isinstance(target, (dict, list)):
            if strict:
                raise DnnError(f"--set {'.'.join(parts)}: {'.'.join(parts[:depth])} is not a mapping or list.")
            return 0
        count = 0
        for key in range(len(target)) if isinstance(target, list) else list(target):
            if last:
                target[key] = _plain_copy(value)
                touched.append((*path, key))
                count += 1
            elif isinstance(target[key], (dict, list)):
                count += _assign(target[key], parts, depth + 1, value, False, (*path, key), touched)
        return count
    if strict:
        key = _index(target, part, parts[: depth + 1])
        if last:
            target[key] = value
            touched.append((*path, key))
            return 1
        if parts[depth + 1] == "*" and isinstance(target, dict) and key not in target:
            raise DnnError(
                f"--set {'.'.join(parts)}: {'.'.join(parts[: depth + 1])} does not exist.{suggest(key, target)}"
            )
        child = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        if not isinstance(child, (dict, list)):
            raise DnnError(f"--set {'.'.join(parts)}: {'.'.join(parts[: depth + 1])} is not a mapping or list.")
        return _assign(child, parts, depth + 1, value, True, (*path, key), touched)
    if isinstance(target, dict) and part in target:
        key = part
    elif isinstance(target, list) and part.lstrip("-").isdigit() and -len(target) <= int(part) < len(target):
        key = int(part) % len(target)
    else:
        return 0
    if last:
        target[key] = _plain_copy(value)
        touched.append((*path, key))
        return 1
    child = target[key]
    if not isinstance(child, (dict, list)):
        return 0
    return _assign(child, parts, depth + 1, value, False, (*path, key), touched)


def _why_nothing(mapping, parts: list[str], star: int) -> str:
    """Why a ``*`` pattern set nothing: no item has the key (a near name?), or it is no mapping where one is needed."""
    node = mapping
    for part in parts[:star]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    items = node if isinstance(node, list) else list(node.values()) if isinstance(node, dict) else []
    where = ".".join(parts[:star]) or "the config"
    if star + 1 >= len(parts):
        return f"{where} is empty."
    key = parts[star + 1]
    having = [item[key] for item in items if isinstance(item, dict) and key in item]
    if having and star + 2 < len(parts):
        sample = next((h for h in having if not isinstance(h, (dict, list))), having[0])
        return (
            f"in the items of {where}, {key!r} is {sample!r}, not a mapping with {parts[star + 2]!r};"
            f" set it whole: --set {'.'.join(parts[: star + 2])}=VALUE."
        )
    keys = {k for item in items if isinstance(item, dict) for k in item}
    return f"no item of {where} has {'.'.join(parts[star + 1 :])!r}.{suggest(key, keys)}"


def _index(target, part: str, parts: list[str]):
    if isinstance(target, list):
        if not part.lstrip("-").isdigit() or not -len(target) <= int(part) < len(target):
            raise DnnError(f"--set {'.'.join(parts)}: {part!r} is not an index of a list of {len(target)}.")
        return int(part) % len(target)
    return part


def load(path, overrides: list[str] | None = None, check_paths: bool = True) -> Config:
    """Read, override, validate and resolve a config file; errors point at file and line.

    ``check_paths=False`` accepts data paths with unset ``$VARIABLES``, for
    commands (predict, summary) that do not read the data.
    """
    mapping, lines = read_config_file(path)
    touched: list[tuple] = []
    mapping = apply_overrides(mapping, overrides or [], touched)
    try:
        raw = resolve(mapping, default_name=Path(path).stem, check_paths=check_paths)
    except DnnError as err:
        raise locate(err, path, lines, touched) from None
    origin = _origin(path)
    if origin is None:  # a run directory's config.yaml: its user was told when the run started
        for note in advice(raw, mapping):
            warn(locate(note, path, lines, touched).message)
    return Config(raw, Path(path), mapping, origin, tuple(touched))


def _origin(path) -> Path | None:
    """The config file a run directory's config.yaml was written from, as its first line says."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    return Path(first[len(ORIGIN) :].strip()) if first.startswith(ORIGIN) else None


def locate(err: DnnError, path, lines: dict, touched: list[tuple]) -> DnnError:
    """Prefix ``file:line: dotted.key:`` (or ``--set dotted.key:`` for a value an override set) to an error."""
    key = err.key
    dotted = ".".join(str(k) for k in key)
    from_set = any(tuple(key[: len(t)]) == tuple(t) for t in touched)
    if from_set:
        where = f"--set {dotted}"
    else:
        line = None
        for n in range(len(key), -1, -1):
            # a mapping's integer key (class_weight's 0:) is its YAML text in ``lines``
            found = next((k for k in (key[:n], (*key[: n - 1], str(key[n - 1])) if n else ()) if k in lines), None)
            if found is not None:
                line = lines[found]
                break
        where = f"{path}:{line}" if line else str(path)
        if dotted:
            where += f": {dotted}"
    return DnnError(f"{where}: {err.message}", key)


# resolution ----------------------------------------------------------------------
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
        raw["seed"] = check_int(seed, "seed", minimum=0)
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
    return raw


def _output_activation(raw: dict) -> str | None:
    """The name of the output layer's activation (``linear`` for none), or None for a layer without one."""
    act = raw["model"]["layers"][-1].get("activation")
    return act.get("name") if isinstance(act, Mapping) else None


VALIDATION_FILES = ("validation_path", "validation_x_path")


def _check_task(raw: dict, loss, output_shape) -> None:
    """Refuse what the loss, the output layer and the data's classes cannot mean together."""
    n_out = int(math.prod(output_shape))
    n_classes = n_out if n_out > 1 else 2  # one sigmoid unit: two classes
    if loss.targets == "binary" and _output_activation(raw) == "softmax" and n_out > 1:
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


def advice(raw: dict, mapping: Mapping) -> list[DnnError]:
    """What a config asks for that will not happen as written: warnings (Keras warns of the same and goes on),
    each with the key it is about."""
    notes = []
    loss = losses.get(raw["loss"])
    act = _output_activation(raw)
    if loss.logits_activation is not None and loss.from_logits and act in ("softmax", "sigmoid"):
        notes.append(
            DnnError(
                f"{loss.name} received from_logits: true, but the output layer applies {act}, so its outputs are"
                " probabilities, not logits; set from_logits: false, or remove the output activation.",
                ("loss", "from_logits"),
            )
        )
    if loss.logits_activation is not None and not loss.from_logits and act == "linear":
        notes.append(
            DnnError(
                f"{loss.name} expects probabilities (from_logits: false), but the output layer has no activation,"
                f" so its outputs are logits; set loss: {{name: {loss.name}, from_logits: true}}, or give the output"
                f" layer activation: {loss.logits_activation}.",
                ("loss",),
            )
        )
    written = mapping.get("training")
    t = raw["training"]
    size = written.get("batch_size") if isinstance(written, Mapping) else None
    if size is not None and t["batching"] != "mini-batch" and not (t["batching"] == "stochastic" and size == 1):
        every = "all the training samples" if t["batching"] == "batch" else "one sample"
        notes.append(
            DnnError(
                f"{size} is ignored with batching: {t['batching']} (every update uses {every});"
                " remove it, or use batching: mini-batch.",
                ("training", "batch_size"),
            )
        )
    return notes


def find_config(path) -> Path:
    """The config.yaml of a run directory, or the path itself for a file."""
    p = Path(path)
    if p.is_dir():
        return p / "config.yaml"
    return p
