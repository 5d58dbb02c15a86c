"""Experiment configs: YAML in, a fully resolved and validated config out.

Reading (``dnncli.yamlfile``), overrides (``overrides``), resolution
(``resolve``) and warnings (``notes``) each have a module; this one holds the
``Config`` object and ``load``, which runs them in order.

Errors keep the dotted key path of the offending value; ``locate`` turns it
into ``file:line`` using the YAML node tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dnncli import data
from dnncli.errors import DnnError, warn
from dnncli.experiment.modeline import modeline
from dnncli.experiment.notes import config_notes
from dnncli.experiment.overrides import apply_overrides, plain_copy
from dnncli.experiment.resolve import BATCHING, TOP_KEYS, VALIDATION_FILES, TrainingSettings, logged_columns, resolve
from dnncli.nn import losses, optimizers
from dnncli.nn.model import Sequential
from dnncli.yamlfile import MAX_NODES, read_config_file, read_yaml

__all__ = [
    "BATCHING",
    "MAX_NODES",
    "TOP_KEYS",
    "VALIDATION_FILES",
    "Config",
    "TrainingSettings",
    "apply_overrides",
    "find_config",
    "load",
    "locate",
    "read_config_file",
]


@dataclass
class Config:
    """A config: ``resolved``, every default filled in and every value checked (what runs), and ``written``, the
    mapping as its author wrote it, overrides applied (what a fixed config is written from)."""

    resolved: dict
    path: Path | None = None
    written: dict | None = None
    origin: Path | None = None  # the config file a run was started from (the first line of its config.yaml)
    overridden: tuple = ()  # the key paths --set gave a value
    lines: dict = field(default_factory=dict)  # key path -> its line in the file, as loaded

    def __getitem__(self, key):
        return self.resolved[key]

    @property
    def name(self) -> str:
        return self.resolved["name"]

    def error_at(self, key: tuple, message: str) -> DnnError:
        """A config error found after loading (with the data in hand): ``file:line: dotted.key: message``."""
        return locate(DnnError(message, key), self.path or "config", self.lines, list(self.overridden))

    def build_model(self) -> Sequential:
        return Sequential(
            self.resolved["model"]["layers"],
            self.resolved["model"]["input_shape"],
            dtype=self.resolved["dtype"],
            seed=self.resolved["seed"],
        )

    def advice_subject(self):
        """The network as the diagnosis's advice reads it (``diagnostics.advice.Subject``): the config resolved and
        as written, the model with its initial weights, and whether overrides would change it."""
        from dnncli.diagnostics.advice import Subject

        def changes(overrides: list[str]) -> bool:
            try:
                return self.with_overrides(overrides).resolved != self.resolved
            except DnnError:
                return False

        written = self.written if self.written is not None else self.resolved
        return Subject(self.resolved, written, self.build_model(), changes)

    def build_loss(self):
        return losses.get(self.resolved["loss"])

    def build_source(self):
        """The data source; ``$DNN_DATASETS/...`` paths are looked for from this config's folder, then from the
        folder of the config its run was started from."""
        folders = [p.parent for p in (self.path, self.origin) if p is not None]
        return data.build_source(self.resolved["data"], folders)

    def build_optimizer(self):
        return optimizers.get(self.resolved["optimizer"])

    def logged_columns(self) -> list[str]:
        """The history columns a run of this config logs that a callback's ``monitor`` or a sweep's ``metric`` can
        name: the loss, its parts and the metrics, then, where the run has a validation set (a split or a file),
        their ``val_`` values."""
        return logged_columns(self.resolved)

    def check_logged(self, column: str, what: str, by: str = "this run") -> None:
        """Refuse a column that ``logged_columns`` lacks: ``{what} 'column' is not logged by {by}. Logged: ...``."""
        logged = self.logged_columns()
        if column in logged:
            return
        message = f"{what} {column!r} is not logged by {by}. Logged: {', '.join(logged)}."
        if column.startswith("val_"):
            message += " Set training.validation_split (or data.validation_path) for val_ values."
        raise DnnError(message)

    def batch_size(self, n_train: int) -> int:
        t = self.resolved["training"]
        return {"batch": max(n_train, 1), "stochastic": 1}.get(t["batching"], t["batch_size"])

    def replaced(self, key: tuple, value) -> Config:
        """A copy with one resolved value changed (``("training", "epochs")``); this config stays as it is."""
        raw, source = plain_copy(self.resolved), plain_copy(self.written if self.written is not None else self.resolved)
        for mapping in (raw, source):
            node = mapping
            for part in key[:-1]:
                node = node.setdefault(part, {})
            node[key[-1]] = value
        return Config(raw, self.path, source, self.origin, lines=self.lines)

    def with_overrides(self, overrides: list[str]) -> Config:
        """This config with ``--set`` overrides applied to it as written, resolved again."""
        mapping = apply_overrides(self.written if self.written is not None else self.resolved, overrides)
        try:
            raw = resolve(mapping, default_name=self.name, check_paths=False)
        except DnnError as err:
            dotted = ".".join(str(k) for k in err.key)
            raise DnnError(
                f"{self.path or 'config'}: {dotted + ': ' if dotted else ''}{err.message}", err.key
            ) from None
        return Config(raw, self.path, mapping, self.origin, lines=self.lines)

    def to_yaml(self, origin: Path | None = None, at: Path | None = None) -> str:
        """The resolved config as YAML; ``origin``: the config file a run starts from, said in a first comment line
        that ``load`` reads back (so a run directory anywhere finds the data beside that config); ``at``: the file
        the text is written to, whose modeline (next) points an editor at the shipped schema."""
        text = yaml.safe_dump(self.resolved, sort_keys=False, default_flow_style=None, width=100)
        batching = self.resolved["training"]["batching"]
        if batching != "mini-batch":
            # the value stays (a resumed run compares it), and the line says what happens instead
            every = "the whole training split" if batching == "batch" else "one sample"
            text = re.sub(
                r"(\n  batch_size: [^\n]*)\n",
                lambda m: f"{m.group(1)}  # ignored: batching: {batching} updates on {every}\n",
                text,
                count=1,
            )
        if at is not None:
            text = f"{modeline(at)}\n{text}"
        return f"{ORIGIN}{Path(origin).resolve()}\n{text}" if origin is not None else text


ORIGIN = "# trained from: "


def load(path, overrides: list[str] | None = None, check_paths: bool = True) -> Config:
    """Read, override, validate and resolve a config file; errors point at file and line.

    ``check_paths=False`` accepts data paths with unset ``$VARIABLES``, for
    commands (predict, summary) that do not read the data.
    """
    mapping, lines, text = read_yaml(path)
    touched: list[tuple] = []
    mapping = apply_overrides(mapping, overrides or [], touched)
    try:
        raw = resolve(mapping, default_name=Path(path).stem, check_paths=check_paths)
    except DnnError as err:
        raise locate(err, path, lines, touched) from None
    first = text.split("\n", 1)[0]
    # the config file a run directory's config.yaml was written from, as its first line says
    origin = Path(first[len(ORIGIN) :].strip()) if first.startswith(ORIGIN) else None
    if origin is None:  # a run directory's config.yaml: its user was told when the run started
        for note in config_notes(raw, mapping):
            warn(locate(note, path, lines, touched).message)
    return Config(raw, Path(path), mapping, origin, tuple(touched), lines)


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


def find_config(path) -> Path:
    """The config.yaml of a run directory, or the path itself for a file."""
    p = Path(path)
    if p.is_dir():
        return p / "config.yaml"
    return p
