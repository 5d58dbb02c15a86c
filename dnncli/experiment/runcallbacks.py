"""A training run's callbacks, wired knowing its directory: each is built with what it writes and where.

In the order the trainer calls them: the final checkpoint (first at train end), the training metrics, each step's
loss, validation, the gradient monitor, progress, the config's callbacks (``training.callbacks``), TensorBoard, and
the epoch's files with its checkpoint (last at epoch end). None of them holds the run: the trainer hands each hook
itself, and the files go through the run's ``RunState``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from dnncli.diagnostics.monitor import GradientMonitor
from dnncli.experiment.runstate import RunState
from dnncli.experiment.tensorboard import TensorBoardLog
from dnncli.experiment.weights import save_weights
from dnncli.train import callbacks as callbacks_mod
from dnncli.train.callbacks import ModelCheckpoint, TrainMetrics, Validation
from dnncli.train.trainer import Callback


class Progress(Callback):
    """Tells the reporter each batch's running loss and, at most every ``layers_every`` seconds, the layers' numbers;
    completes each epoch's row with its learning rate, its seconds and the batches it skipped."""

    def __init__(self, reporter, monitor):
        self.reporter = reporter
        self.monitor = monitor
        self.started = time.perf_counter()
        self.layers_every = getattr(reporter, "layers_every", None)  # a reporter of the API may not subclass Reporter
        self.layers_shown = -math.inf

    def on_epoch_begin(self, trainer, epoch):
        self.started = time.perf_counter()

    def on_batch_end(self, trainer, step, logs):
        if self.layers_every is not None and time.perf_counter() - self.layers_shown >= self.layers_every:
            self.reporter.layers_update(self.monitor.interim())
            self.layers_shown = time.perf_counter()
        pos = trainer.position
        if pos is None:
            self.reporter.batch_end(trainer.epoch, logs["n"], logs["n"], logs["loss"])
            return
        seen = pos.next_start - pos.skipped_samples
        running = (pos.data_sum + pos.penalty_sum) / seen if seen else math.nan
        self.reporter.batch_end(trainer.epoch, pos.next_start, logs["n"], running)

    def on_epoch_end(self, trainer, epoch, logs):
        logs["learning_rate"] = trainer.last_learning_rate
        logs["time"] = time.perf_counter() - self.started
        if trainer.on_nonfinite == "skip_batch":
            logs["skipped_batches"] = sum(1 for e in trainer.skipped if e.epoch == epoch)


class StepLosses(Callback):
    """Each step's batch loss, with the samples seen and the training seconds so far, for ``losses.csv``.

    ``dnn compare --x samples`` draws stochastic against mini-batch descent from it: the course's picture.
    """

    optional_state = True  # run directories from before it existed resume without it

    def __init__(self):
        self.rows: list[dict] = []
        self.samples = 0
        self.seconds = 0.0
        self._clock = None

    def on_train_begin(self, trainer):
        self._clock = time.perf_counter()

    def on_batch_end(self, trainer, step, logs):
        now = time.perf_counter()
        self.seconds += now - self._clock
        self._clock = now
        pos = trainer.position
        self.samples += (pos.next_start if pos is not None else logs["n"]) - logs["batch_start"]
        self.rows.append(
            {
                "epoch": trainer.epoch + 1,
                "step": step,
                "samples": self.samples,
                "seconds": self.seconds,
                "loss": logs["loss"],
            }
        )

    def take(self) -> list[dict]:
        rows, self.rows = self.rows, []
        return rows

    def get_state(self):
        return {"samples": self.samples, "seconds": self.seconds}, {}

    def set_state(self, scalars, arrays):
        self.samples, self.seconds = scalars["samples"], scalars["seconds"]


class BestWeights(ModelCheckpoint):
    """``training.callbacks.model_checkpoint`` in a run: Keras's ModelCheckpoint, writing the weights to the file
    it is built with (the run directory's ``best.npz``), atomically."""

    def __init__(self, path: Path, **config):
        super().__init__(**config)
        self.path = Path(path)

    def save(self, model) -> None:
        save_weights(model, self.path)


class FinalCheckpoint(Callback):
    """First at train end: the final checkpoint holds the last epoch's weights, before a callback restores the best.

    With ``restore_best_weights``, ``model.npz`` gets the best epoch's weights; the checkpoint must keep the last
    epoch's, which go with the optimizer's moments and step count, for ``--resume --epochs N`` to continue exactly.
    """

    def __init__(self, state: RunState):
        self.state = state

    def on_train_end(self, trainer):
        self.state.save_checkpoint(trainer, "early_stopped" if trainer.stop_training else "completed")


class EpochFiles(Callback):
    """Last at epoch end: write history, gradients and the checkpoint, then report the row."""

    def __init__(self, state: RunState, reporter, monitor):
        self.state, self.reporter, self.monitor = state, reporter, monitor

    def on_epoch_end(self, trainer, epoch, logs):
        row = {"epoch": epoch + 1, **logs}
        self.state.end_epoch(trainer, row)
        self.reporter.epoch_end(row, self.monitor.epoch_summaries)


def check_monitors(config) -> None:
    """Refuse a callback whose ``monitor`` the run does not log (before any directory is made)."""
    for name, args in config["training"]["callbacks"].items():
        if name == ModelCheckpoint.name and not args["save_best_only"]:
            continue  # it saves every epoch, as Keras's: its monitor is never read
        config.check_logged(args["monitor"], f"training.callbacks.{name}.monitor:")


def config_callbacks(specs: dict, run_dir: Path) -> list:
    """The objects of ``training.callbacks``; a model checkpoint writes ``RUN_DIR/best.npz``."""
    registry = callbacks_mod.REGISTRY
    return [
        BestWeights(Path(run_dir) / "best.npz", **args)
        if name == ModelCheckpoint.name
        else registry.get({"name": name, **args})
        for name, args in specs.items()
    ]


@dataclass
class RunCallbacks:
    """A run's callbacks (``all``, in the trainer's order) and the ones the run reads back."""

    monitor: GradientMonitor
    losses: StepLosses
    user: list  # training.callbacks
    tensorboard: TensorBoardLog | None
    state: RunState
    all: list


def wire(config, run_dir: Path, model, loss, data, reporter) -> RunCallbacks:
    """The callbacks of a run of ``config`` in ``run_dir``, training ``model`` on ``data`` (its ``PreparedData``)."""
    names = config["metrics"]
    train_metrics = TrainMetrics(names, loss)
    monitor = GradientMonitor(model, config["monitor"], loss)
    losses = StepLosses()
    user = config_callbacks(config["training"]["callbacks"], run_dir)
    stateful = {"train_metrics": train_metrics, "monitor": monitor, "losses": losses, **{cb.name: cb for cb in user}}
    state = RunState(run_dir, config, monitor, losses, stateful)
    callbacks = [FinalCheckpoint(state), train_metrics, losses]
    if data.x_val is not None:
        callbacks.append(Validation(data.x_val, data.y_val, loss, names))
    callbacks += [monitor, Progress(reporter, monitor), *user]
    tensorboard = None
    if config["training"]["tensorboard"]:
        # after the callbacks that finish the epoch's row, before the checkpoint that counts the epoch done
        tensorboard = TensorBoardLog(run_dir, config, monitor, names, data.x_val is not None)
        callbacks.append(tensorboard)
    callbacks.append(EpochFiles(state, reporter, monitor))
    return RunCallbacks(monitor, losses, user, tensorboard, state, callbacks)
