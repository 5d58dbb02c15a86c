"""A training run: train from a config into a run directory, checkpoint every epoch, resume.

The core never prints: progress goes to a ``Reporter`` that the CLI supplies.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnncli.data.preprocess import Preparation
from dnncli.diagnostics.monitor import GradientMonitor, LayerSummary
from dnncli.errors import DnnError, plural
from dnncli.experiment import config as config_mod
from dnncli.experiment import runfiles, tensorboard
from dnncli.experiment.checkpoint import Checkpoint
from dnncli.experiment.evaluate import UNITS_NOTE, evaluate_scored, units_undone
from dnncli.experiment.prepare import PreparedData, build_trainer, prepare_data
from dnncli.experiment.rundir import (
    LOSS_FIELDS,
    RunLock,
    StepLog,
    csv_text,
    history_columns,
    new_run_dir,
    nonfinite_remedies,
)
from dnncli.experiment.tensorboard import TensorBoardLog
from dnncli.experiment.weights import load_init_weights, save_weights
from dnncli.files import StorageError, atomic_savez, atomic_write_text
from dnncli.train import callbacks as callbacks_mod
from dnncli.train.callbacks import TrainMetrics, Validation
from dnncli.train.trainer import Callback, Interrupted, NonFiniteLoss


class Reporter:
    """What a training run tells its user; the CLI's display implements it. Silent by default.

    ``batch_end`` gets the running mean loss of the epoch so far; ``epoch_end``
    the history row and each watched layer's numbers and flags for the epoch.
    A reporter that sets ``layers_every`` (seconds) gets ``layers_update`` with
    each layer's numbers and flags so far in the epoch at most that often, and
    once more when training stops within an epoch.
    """

    layers_every: float | None = None

    def train_begin(self, info: dict) -> None: ...
    def batch_end(self, epoch: int, done: int, total: int, loss: float) -> None: ...
    def layers_update(self, layers: list[LayerSummary]) -> None: ...
    def epoch_end(self, row: dict, layers: list[LayerSummary]) -> None: ...
    def train_end(self, result: RunResult | None) -> None: ...


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | early_stopped | interrupted | nonfinite
    epochs: int
    history: list[dict] = field(default_factory=list)
    test: dict | None = None
    message: str = ""
    flags: list[dict] = field(default_factory=list)  # every flag raised during the run, with its onset
    test_units: str = ""  # how the test numbers are taken, where not all in the data's units
    restored_epoch: int | None = None  # the best epoch whose weights restore_best_weights put back (1-based)


class _Progress(Callback):
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


class _FinalCheckpoint(Callback):
    """First at train end: the final checkpoint holds the last epoch's weights, before a callback restores the best.

    With ``restore_best_weights``, ``model.npz`` gets the best epoch's weights; the checkpoint must keep the last
    epoch's, which go with the optimizer's moments and step count, for ``--resume --epochs N`` to continue exactly.
    """

    def __init__(self, run):
        self.run = run

    def on_train_end(self, trainer):
        self.run.save_checkpoint("early_stopped" if trainer.stop_training else "completed")


class _Checkpointer(Callback):
    """Last at epoch end: write history, gradients and the checkpoint, then report the row."""

    def __init__(self, run):
        self.run = run

    def on_epoch_end(self, trainer, epoch, logs):
        row = {"epoch": epoch + 1, **logs}
        self.run.history.append(row)
        self.run.write_epoch_files()
        self.run.reporter.epoch_end(row, self.run.monitor.epoch_summaries)


class TrainingRun:
    """Everything one ``dnn train`` needs, built from a resolved config.

    Use ``TrainingRun.create(config, ...)`` for a new run and
    ``TrainingRun.open(run_dir)`` to resume one, then ``train()``.
    """

    def __init__(self, config, run_dir: Path, reporter: Reporter | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.reporter = reporter or Reporter()
        self.model = config.build_model()
        self.loss = config.build_loss()
        self.history: list[dict] = []
        self.data: PreparedData | None = None
        t = config["training"]
        self.trainer = None
        self.epochs = t["epochs"]
        self.steps = StepLog(self.run_dir / "gradients.csv")
        self.step_losses = StepLog(self.run_dir / "losses.csv", LOSS_FIELDS)
        self.lock = None  # the run directory's lock, held from creation (or --resume) to the end of train()

    # construction ------------------------------------------------------------------
    @classmethod
    def create(cls, config, out=None, runs_root="runs", init_weights=None, epochs=None, reporter=None, force=False):
        if epochs is not None:
            config = config.replaced(("training", "epochs"), epochs)
        # everything that can fail on the user's input fails before the directory exists
        if config["training"]["tensorboard"]:
            tensorboard.require()
        probe = cls(config, Path("."), reporter)
        if init_weights is not None:
            load_init_weights(probe.model, init_weights)
        probe.data = prepare_data(config, probe.model, probe.loss)
        probe._build_trainer()
        run_dir, probe.lock = new_run_dir(config.name, out, runs_root, force)  # force: --out beside other files
        with probe.lock.released_on_error():  # a full disk here: the directory is free for the next try
            probe.run_dir = run_dir
            atomic_write_text(run_dir / "config.yaml", config.to_yaml(origin=config.origin or config.path))
            probe.data.preparation.save(run_dir / "preprocessing.npz")
            probe.steps = StepLog(run_dir / "gradients.csv")
            probe.steps.create()
            probe.step_losses = StepLog(run_dir / "losses.csv", LOSS_FIELDS)
            probe.step_losses.create()
            probe.save_checkpoint()  # epoch 0: a run is resumable, and has a finite state, from the start
        return probe

    @classmethod
    def open(cls, run_dir, epochs=None, reporter=None, force: bool = False):
        run_dir = Path(run_dir)
        runfiles.check_resumable(run_dir)  # one line saying what to do where there is no checkpoint
        lock = RunLock(run_dir).acquire("--resume")
        with lock.released_on_error():
            runfiles.remove_leftovers(run_dir)  # the temporary files of writes a killed process left
            run = cls._open(run_dir, epochs, reporter, force)
        run.lock = lock
        return run

    @classmethod
    def _open(cls, run_dir, epochs, reporter, force):
        config = config_mod.load(run_dir / "config.yaml")
        if config["training"]["tensorboard"]:
            tensorboard.require(run_dir)  # a file where its folder goes is refused before training
        started = Checkpoint.load(run_dir / "checkpoint.npz").config
        if started is not None and not force:
            # the checkpoint kept its config as JSON: compare like with like (class_weight's integer keys)
            changed = _first_difference(started, json.loads(json.dumps(config.resolved)))
            if changed:
                key, was, now = changed
                raise DnnError(
                    f"--resume {run_dir}: config.yaml was edited after the run started ({key}: {was!r} -> {now!r});"
                    " a resumed run must be the same experiment. Put it back, or resume anyway with --force"
                    " (to train longer, use --epochs)."
                )
        if epochs is not None:
            config = config.replaced(("training", "epochs"), epochs)
        run = cls(config, run_dir, reporter)
        run.data = prepare_data(config, run.model, run.loss, Preparation.load(run_dir / "preprocessing.npz"))
        run._build_trainer()
        status = run.load_checkpoint()
        done = run.trainer.epoch
        if status == "early_stopped":
            raise DnnError(f"--resume {run_dir}: the run stopped early after epoch {done}; there is nothing to resume.")
        if status == "completed" and run.epochs <= done:
            raise DnnError(
                f"--resume {run_dir}: the run finished its {plural(done, 'epoch')}; give --epochs with more to train"
                " further."
            )
        if epochs is not None:
            atomic_write_text(run_dir / "config.yaml", config.to_yaml(origin=config.origin))
        return run

    def _build_trainer(self):
        cfg = self.config
        t = cfg["training"]
        self.trainer = build_trainer(cfg, self.model, self.loss, len(self.data.x_train), self.data.sample_weight)
        names = cfg["metrics"]
        self.train_metrics = TrainMetrics(names, self.loss)
        self.monitor = GradientMonitor(self.model, cfg["monitor"], self.loss)
        self.losses = StepLosses()
        self.user_callbacks = callbacks_mod.build(t["callbacks"])
        for cb in self.user_callbacks:
            if isinstance(cb, callbacks_mod.ModelCheckpoint):  # the run directory chooses its file: best.npz
                cb.save = lambda model: save_weights(model, self.run_dir / "best.npz")
        for cb in self.user_callbacks:
            monitor = cb.monitor
            if isinstance(cb, callbacks_mod.ModelCheckpoint) and not cb.save_best_only:
                continue  # it saves every epoch, as Keras's: its monitor is never read
            known = ["loss", *names]
            if self.data.x_val is not None:
                known += ["val_loss", *[f"val_{n}" for n in names]]
            if monitor not in known:
                raise DnnError(
                    f"training.callbacks.{cb.name}.monitor: {monitor!r} is not logged by this run."
                    f" Logged: {', '.join(known)}"
                    + (
                        "; set training.validation_split (or data.validation_path) to get val_ values."
                        if monitor.startswith("val_")
                        else ""
                    )
                )
        callbacks = [_FinalCheckpoint(self), self.train_metrics, self.losses]
        if self.data.x_val is not None:
            callbacks.append(Validation(self.data.x_val, self.data.y_val, self.loss, names))
        callbacks += [self.monitor, _Progress(self.reporter, self.monitor), *self.user_callbacks]
        self.tensorboard = None
        if t["tensorboard"]:
            # after the callbacks that finish the epoch's row, before the checkpoint that counts the epoch done
            self.tensorboard = TensorBoardLog(self, cfg, self.monitor, names, self.data.x_val is not None)
            callbacks.append(self.tensorboard)
        self.callbacks = [*callbacks, _Checkpointer(self)]

    # checkpoints ---------------------------------------------------------------------
    def _stateful(self):
        return {
            "train_metrics": self.train_metrics,
            "monitor": self.monitor,
            "losses": self.losses,
            **{cb.name: cb for cb in self.user_callbacks},
        }

    def write_epoch_files(self, history: bool = True):
        if history:
            columns = history_columns(self.history)
            atomic_write_text(self.run_dir / "history.csv", csv_text(self.history, columns))
        self.steps.append(self.monitor.take_records())
        self.step_losses.append(self.losses.take())
        self.save_checkpoint()

    def save_checkpoint(self, status: str = "running"):
        schedule = isinstance(self.config["optimizer"]["learning_rate"], dict)
        checkpoint = Checkpoint.capture(
            self.trainer, self.history, self._stateful(), status, not schedule, self.config.resolved
        )
        checkpoint.save(self.run_dir / "checkpoint.npz")

    def load_checkpoint(self) -> str:
        path = self.run_dir / "checkpoint.npz"
        checkpoint = Checkpoint.load(path)
        checkpoint.restore(self.trainer, self._stateful(), str(path), self.run_dir / "config.yaml")
        self.history = checkpoint.history
        losses = {r["step"]: r["loss"] for r in self.step_losses.cut_to(checkpoint.step)}
        self.monitor.resume(self.steps.cut_to(checkpoint.step), losses)
        return checkpoint.status

    def _nonfinite_report(self, err) -> str:
        """Say where the first NaN or infinity appeared, and save the batch's sample indices."""
        tr = self.trainer
        pos = tr.position
        order = pos.perm if pos is not None and pos.perm is not None else np.arange(len(self.data.x_train))
        indices = order[err.batch_start : err.batch_start + err.batch_size]
        atomic_savez(
            self.run_dir / "nonfinite_batch.npz",
            {
                "indices": indices,
                "epoch": np.array(err.epoch + 1),
                "step": np.array(err.step + 1),
                "stage": np.array(err.stage),
                "layer": np.array(-1 if err.layer is None else err.layer),
            },
        )
        where = "" if err.layer is None else f" of layer {err.layer} ({self.model.layers[err.layer].name})"
        stage = {
            "update": "the weights (after the previous update)",
            "loss": "the loss",
            "moving statistics": "the batch statistics (kept out of the moving statistics)",
        }.get(err.stage, err.stage)
        last = err.batch_start + err.batch_size - 1
        batch = f"sample {last}" if err.batch_size == 1 else f"samples {err.batch_start}..{last}"
        every = (
            f"Every batch of epoch {err.epoch + 1} was non-finite and skipped (training.on_nonfinite: skip_batch):"
            " nothing was learned, and there is no loss to log. "
            if err.whole_epoch
            else ""
        )
        return (
            f"{every}Non-finite values first appeared in {stage}{where}, at epoch {err.epoch + 1}, step {err.step + 1}"
            f" (the batch of {batch} in that epoch's order;"
            f" its indices in the training split are in {self.run_dir / 'nonfinite_batch.npz'}). Training stopped;"
            f" {self.run_dir / 'checkpoint.npz'} keeps the last finite state.\n"
            + nonfinite_remedies(self.config, self.run_dir, err.stage, self._advice())
        )

    def _advice(self) -> list[dict]:
        """The diagnosis's advice on the flags raised so far (a stopped run's), causes first."""
        from dnncli.diagnostics.advice import DataStats, advise

        data = DataStats.of(self.config["data"].get("scale", "none"), self.loss, self.data.x_train, self.data.y_train)
        return [
            a.to_dict()
            for a in advise(self.config.advice_subject(), self.monitor.tracker.raised(), self.monitor.layers, data)
        ]

    # training ----------------------------------------------------------------------
    def train(self) -> RunResult:
        """Train to the configured number of epochs; the result says how it ended."""
        try:
            return self._train()
        except StorageError as err:
            self.reporter.train_end(None)
            raise StorageError(
                f"{err.message} Training stopped at epoch {self.trainer.epoch + 1}, step {self.trainer.step};"
                f" {self.run_dir / 'checkpoint.npz'} holds the last finished epoch. Make room, then:"
                f" dnn train --resume {self.run_dir}"
            ) from None
        except BaseException:
            self.reporter.train_end(None)
            raise
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    def _train(self) -> RunResult:
        d = self.data
        tr = self.trainer
        self.reporter.train_begin(run_info(self.config, d, tr, self.monitor, self.run_dir, self.epochs, self.history))
        status, message = "completed", ""
        try:
            # overflow shows up as a non-finite loss, reported with its epoch and step: no numpy warnings
            with np.errstate(all="ignore"):
                tr.fit(d.x_train, d.y_train, epochs=self.epochs, callbacks=self.callbacks, prepared=True)
            if tr.stop_training:
                status = "early_stopped"
        except Interrupted:
            self.write_epoch_files(history=False)
            status = "interrupted"
            message = (
                f"Interrupted at epoch {tr.epoch + 1}, step {tr.step}. Resume with: dnn train --resume {self.run_dir}"
            )
        except NonFiniteLoss as err:
            status = "nonfinite"
            self.monitor.stopped(err)
            # the records up to the bad batch show how it came; a resume cuts them back to the checkpoint
            self.steps.append(self.monitor.take_records())
            self.step_losses.append(self.losses.take())
            message = self._nonfinite_report(err)
        if status in ("interrupted", "nonfinite") and getattr(self.reporter, "layers_every", None) is not None:
            self.reporter.layers_update(self.monitor.interim())  # stopped within an epoch: its numbers so far
        result = RunResult(self.run_dir, status, tr.epoch, self.history, message=message)
        result.flags = [
            {
                "index": w.index,
                "layer": w.name,
                "activation": w.activation,
                "flag": f.name,
                "onset_epoch": f.onset_epoch,
                "onset_step": f.onset_step,
                "last_epoch": f.last_epoch,
                "active_at_end": f.active,
                "transient": f.transient,
                "detail": f.describe("epoch", self.monitor.tracker.total),
            }
            for w, f in self.monitor.tracker.raised()
        ]
        if status in ("completed", "early_stopped"):
            save_weights(self.model, self.run_dir / "model.npz")
            metrics = self.config["metrics"]
            if len(d.x_test):  # data.test_split: 0 keeps no test set
                result.test = evaluate_scored(self.model, self.loss, metrics, d.x_test, d.y_test, d.preparation)
            result.test_units = UNITS_NOTE if units_undone(self.loss, d.preparation) else ""
            es = next((cb for cb in self.user_callbacks if cb.name == "early_stopping"), None)
            if es is not None and es.restore_best_weights and es.best_weights is not None:
                result.restored_epoch = es.best_epoch + 1  # on_train_end put them back, as Keras says
            if status == "early_stopped":
                result.message = (
                    f"Early stopping after epoch {tr.epoch}: {es.monitor} did not improve for"
                    f" {plural(es.patience, 'epoch')}."
                )
        self.reporter.train_end(result)
        return result


def run_info(config, data, trainer, monitor, run_dir, epochs: int, history: list[dict]) -> dict:
    """What a reporter's ``train_begin`` is told of a run."""
    n = len(data.x_train)
    return {
        "run_dir": run_dir,
        "name": config.name,
        "samples": n,
        "validation": 0 if data.x_val is None else len(data.x_val),
        "batch_size": trainer.batch_size,
        "steps": math.ceil(n / trainer.batch_size),
        "epochs": epochs,
        "start_epoch": trainer.epoch,
        "metrics": config["metrics"],
        "watched": [{"index": w.index, "name": w.name, "activation": w.activation} for w in monitor.layers],
        "history": list(history),
        "params": trainer.model.count_params(),
        "resumed": bool(history),
    }


def _first_difference(a, b, path: str = "") -> tuple[str, object, object] | None:
    """(dotted key, value in a, value in b) of the first place two resolved configs differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}.{i}")
            if found:
                return found
        return None
    return None if a == b else (path, a, b)
