"""A training run: train from a config into a run directory, checkpoint every epoch, resume.

A run is built knowing its directory: what it trains (model, data, trainer) is built and checked first, then the
directory is made, then the callbacks, each with what it writes and where (``runcallbacks``). The core never
prints: progress goes to a ``Reporter`` that the CLI supplies.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnncli.data.preprocess import Preparation
from dnncli.diagnostics.monitor import LayerSummary
from dnncli.errors import DnnError, plural
from dnncli.experiment import config as config_mod
from dnncli.experiment import runfiles, tensorboard
from dnncli.experiment.checkpoint import Checkpoint
from dnncli.experiment.evaluate import UNITS_NOTE, evaluate_scored, units_undone
from dnncli.experiment.nonfinite import nonfinite_report
from dnncli.experiment.prepare import PreparedData, build_trainer, prepare_data
from dnncli.experiment.runcallbacks import check_monitors, wire
from dnncli.experiment.rundir import RunLock, new_run_dir
from dnncli.experiment.weights import load_init_weights, save_weights
from dnncli.files import StorageError, atomic_write_text
from dnncli.train.threads import ThreadPolicy
from dnncli.train.trainer import Interrupted, NonFiniteLoss


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


class TrainingRun:
    """Everything one ``dnn train`` needs, built from a resolved config, in its run directory.

    Use ``TrainingRun.create(config, ...)`` for a new run and
    ``TrainingRun.open(run_dir)`` to resume one, then ``train()``.
    """

    def __init__(self, config, run_dir: Path, model, loss, data: PreparedData, trainer, reporter=None, lock=None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.reporter = reporter or Reporter()
        self.model, self.loss, self.data, self.trainer = model, loss, data, trainer
        self.epochs = config["training"]["epochs"]
        self.lock = lock  # the run directory's lock, held from creation (or --resume) to the end of train()
        wired = wire(config, self.run_dir, model, loss, data, self.reporter)
        self.monitor, self.losses, self.user_callbacks = wired.monitor, wired.losses, wired.user
        self.tensorboard = wired.tensorboard
        self.state = wired.state  # history.csv, the step logs and the checkpoint
        self.callbacks = wired.all

    @property
    def history(self) -> list[dict]:
        return self.state.history

    # construction ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        config,
        out=None,
        runs_root="runs",
        init_weights=None,
        epochs=None,
        reporter=None,
        force=False,
        threads=None,
    ):
        """A new run of ``config``; ``threads``: its BLAS threads this time (a sweep's trial: its CPUs), else the
        config's ``training.threads`` (written to the run's config.yaml as it was)."""
        if epochs is not None:
            config = config.replaced(("training", "epochs"), epochs)
        # everything that can fail on the user's input fails before the directory exists
        if config["training"]["tensorboard"]:
            tensorboard.require()
        parts = _parts(config, init_weights=init_weights)
        run_dir, lock = new_run_dir(config.name, out, runs_root, force)  # force: --out beside other files
        with lock.released_on_error():  # a full disk here: the directory is free for the next try
            atomic_write_text(
                run_dir / "config.yaml", config.to_yaml(origin=config.origin or config.path, at=run_dir / "config.yaml")
            )
            parts[2].preparation.save(run_dir / "preprocessing.npz")
            run = cls(config, run_dir, *parts, reporter, lock)
            run.state.create(run.trainer)  # epoch 0: a run is resumable, and has a finite state, from the start
        if threads is not None:
            run.trainer.threads = ThreadPolicy(threads)
        return run

    @classmethod
    def open(cls, run_dir, epochs=None, reporter=None, force: bool = False, threads=None):
        """Resume the run in ``run_dir``; ``threads``: its BLAS threads this time (``--threads``), else the config's."""
        run_dir = Path(run_dir)
        runfiles.check_resumable(run_dir)  # one line saying what to do where there is no checkpoint
        lock = RunLock(run_dir).acquire("--resume", claim=False)  # written once resumed: a refusal leaves it
        with lock.released_on_error():
            runfiles.remove_leftovers(run_dir)  # the temporary files of writes a killed process left
            run = cls._open(run_dir, epochs, reporter, force, lock)
            lock.claim()
        if threads is not None:
            run.trainer.threads = ThreadPolicy(threads)
        return run

    @classmethod
    def _open(cls, run_dir, epochs, reporter, force, lock):
        config = config_mod.load(run_dir / "config.yaml")
        if config["training"]["tensorboard"]:
            tensorboard.require(run_dir)  # a file where its folder goes is refused before training
        started = Checkpoint.load(run_dir / "checkpoint.npz").config
        if started is not None and not force:
            # the checkpoint kept its config as JSON: compare like with like (class_weight's integer keys)
            changed = _first_difference(_experiment(started), _experiment(json.loads(json.dumps(config.resolved))))
            if changed:
                key, was, now = changed
                raise DnnError(
                    f"--resume {run_dir}: config.yaml was edited after the run started ({key}: {was!r} -> {now!r});"
                    " a resumed run must be the same experiment. Put it back, or resume anyway with --force"
                    " (to train longer, use --epochs)."
                )
        if epochs is not None:
            config = config.replaced(("training", "epochs"), epochs)
        parts = _parts(config, Preparation.load(run_dir / "preprocessing.npz"))
        run = cls(config, run_dir, *parts, reporter, lock)
        status = run.state.load_checkpoint(run.trainer)
        done = run.trainer.epoch
        if status == "early_stopped":
            raise DnnError(f"--resume {run_dir}: the run stopped early after epoch {done}; there is nothing to resume.")
        if status == "completed" and run.epochs <= done:
            raise DnnError(
                f"--resume {run_dir}: the run finished its {plural(done, 'epoch')}; give --epochs with more to train"
                " further."
            )
        if epochs is not None:
            atomic_write_text(run_dir / "config.yaml", config.to_yaml(origin=config.origin, at=run_dir / "config.yaml"))
        return run

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
            self.state.write(tr, history=False)
            status = "interrupted"
            message = (
                f"Interrupted at epoch {tr.epoch + 1}, step {tr.step}. Resume with: dnn train --resume {self.run_dir}"
            )
        except NonFiniteLoss as err:
            status = "nonfinite"
            self.monitor.stopped(err)
            # the records up to the bad batch show how it came; a resume cuts them back to the checkpoint
            self.state.write_steps()
            message = nonfinite_report(err, self.run_dir, self.config, d, tr, self.monitor)
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


def _parts(config, preparation: Preparation | None = None, init_weights=None) -> tuple:
    """(model, loss, data, trainer) of a run of ``config``, its callbacks' monitors checked: what fails on the user's
    input fails here, before a new run's directory is made. ``preparation``: a resumed run's, reused."""
    model, loss = config.build_model(), config.build_loss()
    if init_weights is not None:
        load_init_weights(model, init_weights)
    data = prepare_data(config, model, loss, preparation)
    trainer = build_trainer(config, model, loss, len(data.x_train), data.sample_weight)
    check_monitors(config)
    return model, loss, data, trainer


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


def _experiment(resolved: dict) -> dict:
    """A resolved config less what changes the speed, not the experiment (``training.threads``): a run resumed
    with other threads, or started before the key existed, is the same experiment."""
    training = {k: v for k, v in resolved.get("training", {}).items() if k != "threads"}
    return resolved | {"training": training}


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
