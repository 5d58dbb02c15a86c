"""Early stopping, learning-rate reduction and model checkpoints, with Keras's defaults and comparisons.

Each keeps its whole state in ``get_state``/``set_state`` so that a resumed
run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from dnncli.errors import DnnError, check_bool, check_choice, check_float, check_int
from dnncli.registry import Registry
from dnncli.train import metrics
from dnncli.train.scoring import evaluate_arrays
from dnncli.train.trainer import Callback

MODES = ("auto", "min", "max")


def _mode(mode: str, monitor: str) -> str:
    return metrics.direction(monitor) if mode == "auto" else mode


class Monitoring(Callback):
    """A callback that watches one logged value: ``monitor``, better when lower or higher by ``mode``."""

    name = "callback"
    monitor: str
    mode: str

    def _check_monitor(self, monitor) -> str:
        if not isinstance(monitor, str):
            raise DnnError(f"{self.name}.monitor must be a log name. Received: {monitor!r}", ("monitor",))
        return monitor

    def _better(self, current, reference, delta: float = 0.0) -> bool:
        """Whether ``current`` beats ``reference`` by more than ``delta`` (anything beats None)."""
        if reference is None:
            return True
        if _mode(self.mode, self.monitor) == "min":
            return current < reference - delta
        return current > reference + delta

    def get_config(self):
        return {k: getattr(self, k) for k in REGISTRY.parameters(self.name)}


class EarlyStopping(Monitoring):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model ends with the weights of the best
    epoch (Keras restores them only when it stops early; dnncli also at the
    last epoch, so ``model.npz`` always holds the best weights).
    """

    name = "early_stopping"

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        self.monitor = self._check_monitor(monitor)
        self.min_delta = abs(check_float(min_delta, "early_stopping.min_delta"))
        self.patience = check_int(patience, "early_stopping.patience", minimum=0)
        self.mode = check_choice(mode, "early_stopping.mode", MODES)
        self.baseline = None if baseline is None else check_float(baseline, "early_stopping.baseline")
        self.restore_best_weights = check_bool(restore_best_weights, "early_stopping.restore_best_weights")
        self.start_from_epoch = check_int(start_from_epoch, "early_stopping.start_from_epoch", minimum=0)
        self.wait = 0
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, trainer, epoch, logs):
        current = logs.get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        # NaN never improves (as in Keras), so a diverging run still stops
        if math.isfinite(current) and self._better(current, self.best, self.min_delta):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = trainer.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline, self.min_delta):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.restore_best_weights and self.best_weights is not None:
            trainer.model.set_weights(self.best_weights)

    def get_state(self) -> tuple[dict, dict]:
        """(JSON-able scalars, arrays) for a checkpoint."""
        scalars = {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }
        arrays = {f"best_weights.{i}": w for i, w in enumerate(self.best_weights or [])}
        return scalars, arrays

    def set_state(self, scalars: dict, arrays: dict) -> None:
        self.wait, self.best = scalars["wait"], scalars["best"]
        self.best_epoch, self.stopped_epoch = scalars["best_epoch"], scalars["stopped_epoch"]
        weights = [arrays[f"best_weights.{i}"] for i in range(len(arrays))]
        self.best_weights = weights or None


class ReduceLROnPlateau(Monitoring):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    name = "reduce_lr_on_plateau"

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        self.monitor = self._check_monitor(monitor)
        self.factor = check_float(factor, "reduce_lr_on_plateau.factor", 0.0, 1.0, low_open=True, high_open=True)
        self.patience = check_int(patience, "reduce_lr_on_plateau.patience", minimum=0)
        self.mode = check_choice(mode, "reduce_lr_on_plateau.mode", MODES)
        self.min_delta = check_float(min_delta, "reduce_lr_on_plateau.min_delta", 0.0)
        self.cooldown = check_int(cooldown, "reduce_lr_on_plateau.cooldown", minimum=0)
        self.min_lr = check_float(min_lr, "reduce_lr_on_plateau.min_lr", 0.0)
        self.wait = 0
        self.cooldown_counter = 0
        self.best = None

    def on_epoch_end(self, trainer, epoch, logs):
        current = logs.get(self.monitor)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if math.isfinite(current) and self._better(current, self.best, self.min_delta):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            old = trainer.optimizer.learning_rate
            if self.wait >= self.patience and old > float(np.float32(self.min_lr)):
                trainer.optimizer.learning_rate = max(old * self.factor, self.min_lr)
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def get_state(self):
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter, "best": self.best}, {}

    def set_state(self, scalars, arrays):
        self.wait, self.cooldown_counter, self.best = scalars["wait"], scalars["cooldown_counter"], scalars["best"]


class ModelCheckpoint(Monitoring):
    """Save the weights at the end of each epoch, as Keras's ``ModelCheckpoint(save_weights_only=True)``: with
    ``save_best_only``, only when ``monitor`` is better than at every save before (and than
    ``initial_value_threshold``, if given). NaN is never better.

    The training loop does not choose files: ``save(model)`` writes the weights, and here writes nothing; a run
    builds a subclass that knows its file from its construction (``RUN_DIR/best.npz``, written atomically: an
    interruption leaves the previous file whole).
    """

    name = "model_checkpoint"

    def __init__(
        self,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        initial_value_threshold: float | None = None,
    ):
        self.monitor = self._check_monitor(monitor)
        self.save_best_only = check_bool(save_best_only, "model_checkpoint.save_best_only")
        self.mode = check_choice(mode, "model_checkpoint.mode", MODES)
        self.initial_value_threshold = (
            None
            if initial_value_threshold is None
            else check_float(initial_value_threshold, "model_checkpoint.initial_value_threshold")
        )
        self.best = self.initial_value_threshold
        self.best_epoch = None  # the epoch (0-based) of the weights saved last

    def on_epoch_end(self, trainer, epoch, logs):
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None or not math.isfinite(current):
                return
            if not self._better(current, self.best):
                return
            self.best = current
        self.best_epoch = epoch
        self.save(trainer.model)

    def save(self, model) -> None:
        """Write ``model``'s weights: nothing here, where no file is chosen."""

    def get_state(self):
        return {"best": self.best, "best_epoch": self.best_epoch}, {}

    def set_state(self, scalars, arrays):
        self.best, self.best_epoch = scalars["best"], scalars["best_epoch"]


CALLBACKS = {cls.name: cls for cls in (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint)}
REGISTRY = Registry("callback", CALLBACKS)


def resolve_specs(mapping, optimizer_config: dict) -> dict:
    """Validate ``training.callbacks`` and fill in every default.

    Each key enables one callback: ``early_stopping: {patience: 3}``, or
    ``early_stopping: true`` for the defaults; ``false`` or null disables it.
    """
    key = ("training", "callbacks")
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise DnnError(f"training.callbacks must be a mapping of callback names. Received: {mapping!r}", key)
    out = {}
    for name, args in mapping.items():
        try:
            canonical = REGISTRY.canonical(name)
        except DnnError as err:
            raise DnnError(err.message, (*key, name)) from None
        if args is False or args is None:
            continue
        if args is True:
            args = {}
        if not isinstance(args, Mapping):
            raise DnnError(f"training.callbacks.{name} must be a mapping or true. Received: {args!r}", (*key, name))
        if "name" in args:
            raise DnnError(
                f"training.callbacks.{name}: the key names the callback; remove 'name'.", (*key, name, "name")
            )
        cb = REGISTRY.get({"name": canonical, **args}, (*key, name))
        if canonical == "reduce_lr_on_plateau" and isinstance(optimizer_config.get("learning_rate"), Mapping):
            raise DnnError(
                "reduce_lr_on_plateau cannot change a learning rate that follows a schedule; use one or the other.",
                (*key, name),
            )
        out[canonical] = cb.get_config()
    return out


def build(specs: dict) -> list:
    """Callback objects from resolved specs."""
    return [REGISTRY.get({"name": name, **args}) for name, args in specs.items()]


class TrainMetrics(Callback):
    """Running metrics over the epoch's training batches (as Keras reports them)."""

    def __init__(self, names, loss):
        self.metrics = [metrics.get(n, loss) for n in names]

    def on_epoch_begin(self, trainer, epoch):
        for m in self.metrics:
            m.reset()

    def on_gradients(self, trainer, x, y, loss):
        out = trainer.model.last_output
        for m in self.metrics:
            m.update(y, out)

    def on_epoch_end(self, trainer, epoch, logs):
        for m in self.metrics:
            logs[m.name] = m.result()

    def get_state(self):
        scalars, arrays = {}, {}
        for m in self.metrics:
            scalars[m.name], own = m.get_state()
            arrays.update({f"{m.name}.{k}": v for k, v in own.items()})
        return scalars, arrays

    def set_state(self, scalars, arrays):
        for m in self.metrics:
            prefix = f"{m.name}."
            m.set_state(scalars[m.name], {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})


class Validation(Callback):
    """val_loss and val_ metrics at the end of each epoch, in inference mode."""

    def __init__(self, x, y, loss, names):
        self.x, self.y, self.loss, self.names = x, y, loss, names

    def on_epoch_end(self, trainer, epoch, logs):
        result = evaluate_arrays(trainer.model, self.loss, self.names, self.x, self.y)
        logs.update({f"val_{k}": v for k, v in result.items()})


class StopAfter(Callback):
    """Stop the trainer (at the batch boundary, as Ctrl-C does) once ``steps`` steps are done: a probe of a few
    steps rather than whole epochs (inspect-gradients, the doctor)."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_batch_end(self, trainer, step, logs):
        if step >= self.steps:
            trainer.request_stop()
