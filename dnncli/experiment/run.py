"""Run directories: train from a config, checkpoint every epoch, resume, evaluate, predict.

A run directory holds the resolved ``config.yaml``, ``history.csv``,
``gradients.csv``, ``preprocessing.npz``, ``checkpoint.npz`` (everything a
resume needs) and, once training ends, ``model.npz``. Every file is written to
a temporary name and renamed, so an interruption never leaves a half-written
file, and nothing the user had is overwritten.

The core never prints: progress goes to a ``Reporter`` that the CLI supplies.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from dnncli import data as data_mod
from dnncli.data import augment as augment_mod
from dnncli.diagnostics.monitor import STEP_FIELDS, GradientMonitor, LayerSummary
from dnncli.errors import DnnError
from dnncli.experiment import config as config_mod
from dnncli.experiment.weights import load_weights, save_weights
from dnncli.files import atomic_savez, atomic_write_text
from dnncli.train import callbacks as callbacks_mod
from dnncli.train import metrics as metrics_mod
from dnncli.train.trainer import Callback, EpochPosition, Interrupted, NonFiniteLoss, Trainer

RUN_FILES = ("config.yaml", "history.csv", "gradients.csv", "preprocessing.npz", "checkpoint.npz", "model.npz")


# files ----------------------------------------------------------------------------
def create_new_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, refusing (without a race) if ``path`` exists."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DnnError(f"{path}: the directory {path.parent} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.link(tmp, path)  # fails if path exists, unlike a rename
    except FileExistsError:
        raise DnnError(f"{path}: exists already; choose another file.") from None
    finally:
        os.unlink(tmp)


def csv_text(rows: list[dict], columns: list[str], header: bool = True) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    return buf.getvalue()


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return "" if value is None else value


def new_run_dir(name: str, out: str | None, runs_root: str = "runs") -> Path:
    """Create the run directory: ``--out DIR`` (refused if it holds a run) or ``runs/<name>-<time>``."""
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise DnnError(f"--out {path}: exists and is not a directory.")
        held = [f for f in RUN_FILES if (path / f).exists()]
        if held:
            raise DnnError(
                f"--out {path}: holds a run already ({held[0]}); resume it with --resume {path},"
                " or choose another directory."
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise DnnError(f"{root}: cannot find a free run directory name for {name}-{stamp}.")


class StepLog:
    """``gradients.csv``: the monitor's records, appended once an epoch, never rewritten.

    Appending keeps a run's cost linear in its length. A resumed run first cuts
    the file back to its checkpoint's step (records of an epoch that did not
    reach a checkpoint, or a line half written when the process died).
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def create(self) -> None:
        atomic_write_text(self.path, csv_text([], list(STEP_FIELDS)))

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        if not self.path.exists():
            self.create()
        with open(self.path, "a", newline="") as f:
            f.write(csv_text(records, list(STEP_FIELDS), header=False))
            f.flush()
            os.fsync(f.fileno())

    def cut_to(self, step: int) -> list[dict]:
        """Keep the records up to ``step`` (rewriting the file only if anything goes); return them."""
        if not self.path.exists():
            self.create()
            return []
        text = self.path.read_text()
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        records = _parse_step_records(complete)
        kept = [r for r in records if r["step"] <= step]
        if len(kept) != len(records) or complete != text:
            atomic_write_text(self.path, csv_text(kept, list(STEP_FIELDS)))
        return kept


# data -------------------------------------------------------------------------------
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


def model_inputs(model, preparation, raw, where: str) -> np.ndarray:
    """Raw inputs checked (shape, finiteness) and scaled as in training; errors name ``where``."""
    try:
        x = model.check_inputs(raw)
    except DnnError as err:
        raise DnnError(f"{where}: {err.message}") from None
    data_mod.check_finite(x, where)
    # check_inputs copied raw unless it already had the model's dtype and layout: scale the copy in place
    return preparation.inputs.transform(x, model.dtype, in_place=not np.may_share_memory(x, raw))


def to_targets(y, loss, n_outputs: int, dtype, preparation=None) -> np.ndarray:
    """Labels in the layout the loss needs: integer classes become one-hot rows for categorical_crossentropy."""
    y = np.asarray(y)
    if loss.name == "categorical_crossentropy" and y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        if len(y) and (y.min() < 0 or y.max() >= n_outputs):
            bad = y[(y < 0) | (y >= n_outputs)][0]
            raise DnnError(f"label {bad} is outside the output layer's {n_outputs} classes (0..{n_outputs - 1}).")
        y = np.eye(n_outputs, dtype=dtype)[y]
    if preparation is not None and preparation.targets is not None:
        y = preparation.targets.transform(y, np.float64)
    return loss.prepare_targets(y, n_outputs, dtype)


def prepare_data(config, model, loss, preparation=None) -> PreparedData:
    """Load the config's data, fit (or reuse) its preparation, scale it and split off validation."""
    source = data_mod.build_source(config["data"])
    where = source.describe()
    regression = loss.name not in metrics_mod.CLASSIFICATION_LOSSES
    ds = source.load(config["seed"], regression, config["training"]["validation_split"])
    if preparation is None:
        try:
            model.check_inputs(ds.x_train[:1])  # shape and type, before fitting anything on the data
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
        x_val = y_val = None
        if ds.x_val is not None:
            x_val = model_inputs(model, preparation, ds.x_val, f"{where}, validation split")
            y_val = to_targets(ds.y_val, loss, n_out, model.dtype, preparation)
    except DnnError as err:
        if err.message.startswith(where):
            raise
        raise DnnError(f"{where}: {err.message}") from None
    return PreparedData(x_all, y_all, x_val, y_val, x_test, y_test, ds.classes, preparation)


def evaluate_arrays(model, loss, metric_names, x, y, batch_size=1024) -> dict:
    """Loss and metrics over (x, y) in inference mode."""
    ms = [metrics_mod.get(name, loss) for name in metric_names]
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        total += model.loss_value(xb, yb, loss) * len(xb)
        for m in ms:
            m.update(yb, model.last_output)
    result = {"loss": total / max(len(x), 1)}
    result.update({m.name: m.result() for m in ms})
    return result


# callbacks of a run -----------------------------------------------------------------
class TrainMetrics(Callback):
    """Running metrics over the epoch's training batches (as Keras reports them)."""

    def __init__(self, names, loss):
        self.metrics = [metrics_mod.get(n, loss) for n in names]

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
        return {m.name: dict(vars(m)) for m in self.metrics}, {}

    def set_state(self, scalars, arrays):
        for m in self.metrics:
            vars(m).update(scalars[m.name])


class Validation(Callback):
    """val_loss and val_ metrics at the end of each epoch, in inference mode."""

    def __init__(self, x, y, loss, names):
        self.x, self.y, self.loss, self.names = x, y, loss, names

    def on_epoch_end(self, trainer, epoch, logs):
        result = evaluate_arrays(trainer.model, self.loss, self.names, self.x, self.y)
        logs.update({f"val_{k}": v for k, v in result.items()})


# reporting --------------------------------------------------------------------------
class Reporter:
    """What a training run tells its user; the CLI's display implements it. Silent by default.

    ``batch_end`` gets the running mean loss of the epoch so far; ``epoch_end``
    the history row and each watched layer's numbers and flags for the epoch.
    """

    def train_begin(self, info: dict) -> None: ...
    def batch_end(self, epoch: int, done: int, total: int, loss: float) -> None: ...
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


class _Progress(Callback):
    def __init__(self, reporter):
        self.reporter = reporter
        self.started = time.perf_counter()

    def on_epoch_begin(self, trainer, epoch):
        self.started = time.perf_counter()

    def on_batch_end(self, trainer, step, logs):
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


class _Checkpointer(Callback):
    """Last at epoch end: write history, gradients and the checkpoint, then report the row."""

    def __init__(self, run):
        self.run = run

    def on_epoch_end(self, trainer, epoch, logs):
        row = {"epoch": epoch + 1, **logs}
        self.run.history.append(row)
        self.run.write_epoch_files()
        self.run.reporter.epoch_end(row, self.run.monitor.epoch_summaries)


# the run --------------------------------------------------------------------------
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

    # construction ------------------------------------------------------------------
    @classmethod
    def create(cls, config, out=None, runs_root="runs", init_weights=None, epochs=None, reporter=None):
        if epochs is not None:
            config.raw["training"]["epochs"] = epochs
        # everything that can fail on the user's input fails before the directory exists
        probe = cls(config, Path("."), reporter)
        if init_weights is not None:
            load_weights(probe.model, init_weights)
        probe.data = prepare_data(config, probe.model, probe.loss)
        probe._build_trainer()
        run_dir = new_run_dir(config.name, out, runs_root)
        probe.run_dir = run_dir
        atomic_write_text(run_dir / "config.yaml", config.to_yaml())
        probe.data.preparation.save(run_dir / "preprocessing.npz")
        probe.steps.path = run_dir / "gradients.csv"
        probe.steps.create()
        probe.save_checkpoint()  # epoch 0: a run is resumable, and has a finite state, from the start
        return probe

    @classmethod
    def open(cls, run_dir, epochs=None, reporter=None):
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise DnnError(f"--resume {run_dir}: no such run directory.")
        if not (run_dir / "checkpoint.npz").exists():
            raise DnnError(f"--resume {run_dir}: no checkpoint.npz to resume from.")
        config = config_mod.load(run_dir / "config.yaml")
        if epochs is not None:
            config.raw["training"]["epochs"] = epochs
        run = cls(config, run_dir, reporter)
        run.data = prepare_data(config, run.model, run.loss, data_mod.Preparation.load(run_dir / "preprocessing.npz"))
        run._build_trainer()
        status = run.load_checkpoint()
        done = run.trainer.epoch
        if status == "early_stopped":
            raise DnnError(f"--resume {run_dir}: the run stopped early after epoch {done}; there is nothing to resume.")
        if status == "completed" and run.epochs <= done:
            raise DnnError(
                f"--resume {run_dir}: the run finished its {done} epochs; give --epochs with more to train further."
            )
        if epochs is not None:
            atomic_write_text(run_dir / "config.yaml", config.to_yaml())
        return run

    def _build_trainer(self):
        cfg = self.config
        t = cfg["training"]
        self.trainer = build_trainer(cfg, self.model, self.loss, len(self.data.x_train))
        names = cfg["metrics"]
        self.train_metrics = TrainMetrics(names, self.loss)
        self.monitor = GradientMonitor(self.model, cfg["monitor"])
        self.user_callbacks = callbacks_mod.build(t["callbacks"])
        for cb in self.user_callbacks:
            monitor = cb.monitor
            known = ["loss", *names]
            if self.data.x_val is not None:
                known += ["val_loss", *[f"val_{n}" for n in names]]
            if monitor not in known:
                raise DnnError(
                    f"training.callbacks.{cb.name}.monitor: {monitor!r} is not logged by this run."
                    f" Logged: {', '.join(known)}"
                    + ("; set training.validation_split to get val_ values." if monitor.startswith("val_") else "")
                )
        callbacks = [self.train_metrics]
        if self.data.x_val is not None:
            callbacks.append(Validation(self.data.x_val, self.data.y_val, self.loss, names))
        callbacks += [self.monitor, _Progress(self.reporter), *self.user_callbacks, _Checkpointer(self)]
        self.callbacks = callbacks

    # checkpoints ---------------------------------------------------------------------
    def _stateful(self):
        return {
            "train_metrics": self.train_metrics,
            "monitor": self.monitor,
            **{cb.name: cb for cb in self.user_callbacks},
        }

    def write_epoch_files(self, history: bool = True):
        if history:
            columns = _history_columns(self.history)
            atomic_write_text(self.run_dir / "history.csv", csv_text(self.history, columns))
        self.steps.append(self.monitor.take_records())
        self.save_checkpoint()

    def save_checkpoint(self, status: str = "running"):
        tr = self.trainer
        arrays = {f"weights.{k}": v for k, v in self.model.weights_dict().items()}
        arrays.update({f"optimizer.{k}": v for k, v in tr.optimizer.get_state().items()})
        meta = {
            "status": status,
            "epoch": tr.epoch,
            "step": tr.step,
            "history": self.history,
            "shuffle_rng": tr.rng.bit_generator.state,
            "generators": {k: g.bit_generator.state for k, g in self.model.generators().items()},
            "learning_rate": None,
            "position": None,
            "callbacks": {},
        }
        if not isinstance(self.config["optimizer"]["learning_rate"], dict):
            meta["learning_rate"] = tr.optimizer.learning_rate
        pos = tr.position
        if pos is not None:
            meta["position"] = {
                "next_start": pos.next_start,
                "data_sum": pos.data_sum,
                "penalty_sum": pos.penalty_sum,
                "skipped_samples": pos.skipped_samples,
                "shuffled": pos.perm is not None,
            }
            if pos.perm is not None:
                arrays["position.perm"] = pos.perm
        for name, cb in self._stateful().items():
            scalars, cb_arrays = cb.get_state()
            meta["callbacks"][name] = scalars
            arrays.update({f"callback.{name}.{k}": v for k, v in cb_arrays.items()})
        arrays["meta"] = np.array(json.dumps(meta))
        atomic_savez(self.run_dir / "checkpoint.npz", arrays)

    def load_checkpoint(self):
        path = self.run_dir / "checkpoint.npz"
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise DnnError(f"{path}: not a readable checkpoint ({err}).") from None
        try:
            self._restore(meta, arrays, path)
        except (KeyError, ValueError) as err:
            raise DnnError(f"{path} does not match {self.run_dir / 'config.yaml'} (no state for {err}).") from None
        return meta.get("status", "running")

    def _restore(self, meta, arrays, path):
        tr = self.trainer
        self.model.set_weights_dict(
            {k[len("weights.") :]: v for k, v in arrays.items() if k.startswith("weights.")}, source=str(path)
        )
        opt_state = {k[len("optimizer.") :]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        variables, _ = tr._variables()
        tr.optimizer.set_state(opt_state, variables)
        if meta["learning_rate"] is not None:
            tr.optimizer.learning_rate = meta["learning_rate"]
        tr.epoch, tr.step = meta["epoch"], meta["step"]
        tr.rng.bit_generator.state = meta["shuffle_rng"]
        for k, g in self.model.generators().items():
            g.bit_generator.state = meta["generators"][k]
        self.history = meta["history"]
        pos = meta["position"]
        if pos is not None:
            perm = arrays.get("position.perm") if pos["shuffled"] else None
            tr.position = EpochPosition(
                perm, pos["next_start"], pos["data_sum"], pos["penalty_sum"], pos["skipped_samples"]
            )
        for name, cb in self._stateful().items():
            prefix = f"callback.{name}."
            cb.set_state(
                meta["callbacks"][name], {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
        self.monitor.resume(self.steps.cut_to(tr.step))

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
        return (
            f"Non-finite values first appeared in {stage}{where}, at epoch {err.epoch + 1}, step {err.step + 1}"
            f" (the batch of samples {err.batch_start}..{err.batch_start + err.batch_size - 1} in that epoch's order;"
            f" their indices in the training split are in {self.run_dir / 'nonfinite_batch.npz'}). Training stopped;"
            f" {self.run_dir / 'checkpoint.npz'} keeps the last finite state. Try a smaller learning rate, gradient"
            " clipping (clipnorm) or batch normalization; dnn inspect-gradients shows which layers grow."
        )

    # training ----------------------------------------------------------------------
    def train(self) -> RunResult:
        """Train to the configured number of epochs; the result says how it ended."""
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
            message = self._nonfinite_report(err)
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
                "detail": f.describe("epoch", self.monitor.tracker.total),
            }
            for w, f in self.monitor.tracker.raised()
        ]
        if status in ("completed", "early_stopped"):
            self.save_checkpoint(status)
            save_weights(self.model, self.run_dir / "model.npz")
            result.test = evaluate_arrays(self.model, self.loss, self.config["metrics"], d.x_test, d.y_test)
            if status == "early_stopped":
                es = next(cb for cb in self.user_callbacks if cb.name == "early_stopping")
                result.message = (
                    f"Early stopping after epoch {tr.epoch}: {es.monitor} did not improve for {es.patience} epochs."
                )
        self.reporter.train_end(result)
        return result


def read_step_records(path: Path) -> list[dict]:
    """The monitor's rows back from ``gradients.csv``, numbers as numbers."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    return _parse_step_records(text if text.endswith("\n") else text[: text.rfind("\n") + 1])


def _parse_step_records(text: str) -> list[dict]:
    ints = ("epoch", "step", "layer_index")
    return [
        {k: v if k == "layer" else int(v) if k in ints else float(v) if v else math.nan for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    ]


def skipped_events(run_dir: Path) -> list[dict]:
    """The batches a run skipped as non-finite (``on_nonfinite: skip_batch``), from its checkpoint."""
    try:
        with np.load(Path(run_dir) / "checkpoint.npz", allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return []
    return meta.get("callbacks", {}).get("monitor", {}).get("events", [])


def nonfinite_event(run_dir: Path) -> dict | None:
    """Where a run stopped on a non-finite batch, from its ``nonfinite_batch.npz``; None if it did not."""
    path = Path(run_dir) / "nonfinite_batch.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            stage = str(npz["stage"]) if "stage" in npz.files else "loss"
            layer = int(npz["layer"]) if "layer" in npz.files else -1
            step, epoch = int(npz["step"]), int(npz["epoch"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    layer = None if layer < 0 else layer
    where = "" if layer is None else f" of layer {layer}"
    detail = f"non-finite {stage}{where} (training stopped)"
    return {"stage": stage, "layer": layer, "step": step, "epoch": epoch, "skipped": False, "detail": detail}


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


def build_trainer(config, model, loss, n_train: int) -> Trainer:
    """The trainer of a config, as ``dnn train`` and ``dnn inspect-gradients`` both build it."""
    t = config["training"]
    trainer = Trainer(
        model, loss, config.build_optimizer(), config.batch_size(n_train), shuffle=t["shuffle"], seed=config["seed"]
    )
    augmenter = augment_mod.build(config["data"].get("augment"))
    if augmenter.active:
        if augmenter.needs_images and len(model.input_shape) < 2:
            raise DnnError(
                "data.augment: shift and horizontal_flip need image inputs (input_shape [height, width]);"
                f" this model's input_shape is {list(model.input_shape)}."
            )
        trainer.augment = augmenter
    trainer.on_nonfinite = t["on_nonfinite"]
    return trainer


def _history_columns(history: list[dict]) -> list[str]:
    if not history:
        return ["epoch"]
    keys = list(history[0])
    order = ["epoch", "loss"]
    order += [
        k
        for k in keys
        if k not in ("epoch", "loss", "data_loss", "penalty", "learning_rate", "time", "flags", "skipped_batches")
        and not k.startswith("val_")
        and not k.startswith("grad_norm.")
    ]
    order += [k for k in keys if k.startswith("val_")]
    order += ["data_loss", "penalty", "learning_rate", "time"]
    order += [k for k in keys if k.startswith("grad_norm.")]
    order += ["skipped_batches", "flags"]
    return [k for k in order if k in keys]


# eval and predict ---------------------------------------------------------------------
def load_run(run_dir):
    """(config, model with model.npz loaded, loss, preprocessor) of a finished run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DnnError(f"{run_dir}: no such run directory.")
    for f in ("config.yaml", "model.npz", "preprocessing.npz"):
        if not (run_dir / f).exists():
            hint = " (training did not finish; resume it with dnn train --resume)" if f == "model.npz" else ""
            raise DnnError(f"{run_dir}: no {f}{hint}.")
    config = config_mod.load(run_dir / "config.yaml", check_paths=False)
    model = config.build_model()
    load_weights(model, run_dir / "model.npz")
    return config, model, config.build_loss(), data_mod.Preparation.load(run_dir / "preprocessing.npz")


def evaluate_run(run_dir, data_path=None) -> dict:
    """Loss, metrics and, for classification, the confusion matrix and per-class report."""
    config, model, loss, prep = load_run(run_dir)
    if data_path is None:
        d = prepare_data(config, model, loss, prep)
        x, y = d.x_test, d.y_test
        source = "test split"
    else:
        x_raw, y_raw = read_labelled(data_path, config, prep)
        n_out = int(np.prod(model.output_shape))
        x = model_inputs(model, prep, x_raw, str(data_path))
        try:
            y = to_targets(y_raw, loss, n_out, model.dtype, prep)
        except DnnError as err:
            raise DnnError(f"{data_path}: {err.message}") from None
        source = str(data_path)
    result = evaluate_arrays(model, loss, config["metrics"], x, y)
    report = {"run_dir": str(run_dir), "data": source, "samples": len(x), **result}
    if loss.name in metrics_mod.CLASSIFICATION_LOSSES:
        probs = model.predict(x)
        from_logits = getattr(loss, "from_logits", False)
        if loss.name == "binary_crossentropy":
            if probs.shape[1] != 1:
                return report  # several independent labels: no single confusion matrix
            pred = (probs[:, 0] > (0.0 if from_logits else 0.5)).astype(int)
            labels = y[:, 0].astype(int)
            k = 2
        else:
            pred = probs.argmax(axis=1)
            labels = y if y.ndim == 1 else y.argmax(axis=1)
            k = probs.shape[1]
        cm = metrics_mod.confusion_matrix(labels, pred, k)
        report["confusion_matrix"] = cm.tolist()
        report["per_class"] = metrics_mod.per_class_report(cm)
        if prep.class_names is not None and len(prep.class_names) == k:
            for row in report["per_class"]:
                row["name"] = prep.class_names[row["class"]]
    return report


def read_labelled(path, config, prep) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels: an NPZ file with arrays ``x`` and ``y``, or a CSV like the training one."""
    path = Path(path)
    if path.suffix == ".csv" and prep.encoder is not None:
        source = data_mod.build_source(config["data"])
        p, names, rows, lines = source.read(str(path))
        y, _ = data_mod.parse_targets(names, rows, lines, p, source.targets, prep.class_names)
        return prep.encoder.transform(names, rows, lines, p), y
    if path.suffix != ".npz":
        kind = "an .npz file with arrays 'x' and 'y'" + (", or a .csv like the training file" if prep.encoder else "")
        raise DnnError(f"--data {path}: expected {kind}.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz.files or "y" not in npz.files:
                raise DnnError(f"--data {path}: needs arrays 'x' and 'y'; it holds {', '.join(npz.files)}.")
            return npz["x"], npz["y"]
    except FileNotFoundError:
        raise DnnError(f"--data {path}: no such file.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DnnError(f"--data {path}: not a readable NPZ file ({err}).") from None


def read_inputs(path) -> np.ndarray:
    """Inputs for prediction: ``.npy``, or ``.csv`` of numbers (a header line is skipped)."""
    path = Path(path)
    if not path.exists():
        raise DnnError(f"{path}: no such file.")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DnnError(f"{path}: not a readable .npy file ({err}).") from None
    if path.suffix != ".csv":
        raise DnnError(f"{path}: expected a .csv or .npy file.")
    rows = []
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                rows.append([float(c) for c in row])
            except ValueError:
                if lineno == 1 and not rows:
                    continue  # a header
                bad = next(c for c in row if not _is_float(c))
                raise DnnError(f"{path}:{lineno}: {bad!r} is not a number.") from None
    if not rows:
        raise DnnError(f"{path}: no data rows.")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DnnError(f"{path}: row {i + 1} has {len(r)} values, the first has {width}.")
    return np.array(rows)


def _is_float(text) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def predict_run(run_dir, input_path) -> tuple[list[str], list[list]]:
    """(column names, rows) of predictions for the inputs in ``input_path``."""
    config, model, loss, prep = load_run(run_dir)
    path = Path(input_path)
    if path.suffix == ".csv" and prep.encoder is not None:
        source = data_mod.build_source(config["data"])
        columns = None
        if not source.header:
            columns = [c for c in source.columns if c not in source.targets]
        names, rows, lines = data_mod.read_csv(path, source.header, columns, source.delimiter)
        raw = prep.encoder.transform(names, rows, lines, path)
    else:
        raw = read_inputs(path)
    out = model.predict(model_inputs(model, prep, raw, str(path)))
    from_logits = getattr(loss, "from_logits", False)
    names = prep.class_names
    if loss.name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        probs = out
        if from_logits:
            probs = np.exp(out - out.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
        classes = probs.argmax(1)
        head = ["class"] + (["label"] if names else []) + [f"p_{k}" for k in range(out.shape[1])]
        return head, [[int(c)] + ([names[c]] if names else []) + list(map(float, p)) for c, p in zip(classes, probs)]
    if loss.name == "binary_crossentropy":
        probs = 1 / (1 + np.exp(-out)) if from_logits else out
        if out.shape[1] == 1:
            classes = (probs[:, 0] > 0.5).astype(int)
            head = ["class"] + (["label"] if names else []) + ["p_1"]
            return head, [[int(c)] + ([names[c]] if names else []) + [float(p[0])] for c, p in zip(classes, probs)]
        return [f"p_{k}" for k in range(out.shape[1])], probs.tolist()
    if prep.targets is not None:
        out = prep.targets.inverse(out.astype(np.float64))
    return [f"y_{k}" for k in range(out.shape[1])], out.tolist()
