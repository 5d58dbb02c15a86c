"""TensorBoard event files for a run: ``training.tensorboard: true`` or ``dnn train --tensorboard``.

Written with tensorboardX (no TensorFlow, no PyTorch) under ``RUN_DIR/tensorboard/``, laid out as Keras's
TensorBoard callback lays it out, so that ``tensorboard --logdir runs/`` overlays training and validation:

- ``train/`` and ``validation/``: per epoch (step = epoch), ``epoch_loss`` and ``epoch_<metric>``; ``train/``
  also has ``epoch_data_loss``, ``epoch_penalty``, ``epoch_learning_rate``, ``epoch_time`` and each layer's mean
  gradient norm over the epoch. The values are the rows of ``history.csv``.
- ``steps/``: per recorded step of the gradient monitor (step = the training step, as in ``gradients.csv``),
  each dense layer's kernel gradient norm as a scalar (``grad_norm/<index>_<layer>``: a vanishing layer is a
  falling line), and histograms of its weights, gradients and activations; and ``noise_scale``, the gradient
  noise scale B_simple of the whole network (moving averages of its two estimates over the records, as
  ``diagnostics/noise.py`` takes them; a resumed run starts the averages again).
- the folder itself: the resolved config as text, and its hyperparameters for the HParams view, with the
  epoch metrics of ``train/`` and ``validation/`` as the session's metrics.

Steps live on two axes (epochs and training steps), so each axis has its own folder: a resumed run opens
each writer with ``purge_step`` at the checkpoint's next epoch or step, and TensorBoard drops whatever the
interrupted process wrote past the checkpoint instead of showing it twice.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from dnncli.diagnostics.noise import RunningNoiseScale
from dnncli.errors import DnnError
from dnncli.train.trainer import Callback

FOLDER = "tensorboard"
INSTALL = "pip install '.[tensorboard]' in a checkout of dnncli, or pip install tensorboardX"
HISTOGRAM_BINS = 30
_SKIP = {"epoch", "flags"}  # history columns that are no scalar of their own


def require(run_dir=None) -> None:
    """Fail now, with the install command, when tensorboardX is missing: before a run directory is made. With
    ``run_dir`` (a run to resume): also when its ``tensorboard`` is not a folder."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise DnnError(f"training.tensorboard needs tensorboardX: {INSTALL}.", ("training", "tensorboard")) from None
    if run_dir is not None:
        _check_folder(Path(run_dir) / FOLDER)


def _check_folder(root: Path) -> None:
    if os.path.lexists(root) and not root.is_dir():
        raise DnnError(
            f"{root}: not a folder; the run's TensorBoard event files go there. Move it away, then run this again."
        )


def scalar_tag(column: str) -> tuple[str, str]:
    """(writer, tag) of a history column: ``val_accuracy`` -> (validation, epoch_accuracy), Keras's names."""
    if column.startswith("val_"):
        return "validation", f"epoch_{column[4:]}"
    if column.startswith("grad_norm."):
        return "train", f"epoch_grad_norm/{column[len('grad_norm.') :]}"
    return "train", f"epoch_{column}"


def hparams(raw: dict) -> dict:
    """The resolved config as flat ``dotted.key: value`` pairs of numbers, strings and booleans."""
    out: dict = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(node, list) and prefix != "model.input_shape":
            for i, v in enumerate(node):
                walk(v, f"{prefix}.{i}")
        elif node is None:
            return
        elif isinstance(node, (bool, str)) or (isinstance(node, (int, float)) and math.isfinite(node)):
            out[prefix] = node
        else:
            out[prefix] = str(node)

    walk({k: v for k, v in raw.items() if k != "monitor"}, "")
    return out


class TensorBoardLog(Callback):
    """Writes a run's epochs and recorded steps as TensorBoard events; see the module docstring for the layout."""

    def __init__(self, run_dir, config, monitor, metrics: list[str], validation: bool):
        self.root = Path(run_dir) / FOLDER
        self.config, self.monitor = config, monitor
        self.metrics, self.validation = metrics, validation
        self.writers: dict = {}
        self.noise = RunningNoiseScale()

    # writers ---------------------------------------------------------------------------
    def _open(self, epochs_done: int, steps_done: int) -> None:
        from tensorboardX import SummaryWriter

        _check_folder(self.root)
        # event files are named by the second and the host: a resume within the same second must not reuse a name
        self.suffix = f".{os.getpid()}.{time.time_ns()}"
        resumed = self.root.is_dir() and any(self.root.iterdir())
        axes = {"train": epochs_done, "validation": epochs_done, "steps": steps_done}
        for name, done in axes.items():
            if name == "validation" and not self.validation:
                continue
            # a resumed run drops, from TensorBoard's view, whatever was written past the checkpoint
            purge = done + 1 if resumed else None
            try:
                self.writers[name] = SummaryWriter(
                    str(self.root / name), purge_step=purge, flush_secs=30, filename_suffix=self.suffix
                )
            except OSError as err:  # a file where its folder goes, no room, no permission
                raise DnnError(
                    f"{self.root / name}: cannot write TensorBoard's event files ({err.strerror or err})."
                ) from None
        if not resumed:
            with SummaryWriter(str(self.root), filename_suffix=self.suffix) as w:
                w.add_text("config", _as_markdown(self.config.to_yaml()), 0)
                for summary in self._hparams_summaries():
                    w.file_writer.add_summary(summary)

    def _hparams_summaries(self):
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
        from tensorboardX.summary import hparams as hparams_summaries

        exp, ssi, _ = hparams_summaries(hparams(self.config.resolved), {})
        # the session's metrics are the epoch scalars of its train/ and validation/ folders, as Keras's HParams
        # callback names them
        content = HParamsPluginData()
        content.ParseFromString(exp.value[0].metadata.plugin_data.content)
        groups = ["train", "validation"] if self.validation else ["train"]
        for group in groups:
            for name in ["loss", *self.metrics]:
                info = content.experiment.metric_infos.add()
                info.name.group, info.name.tag = group, f"epoch_{name}"
        exp.value[0].metadata.plugin_data.content = content.SerializeToString()
        return exp, ssi

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers = {}

    # the trainer's hooks ---------------------------------------------------------------
    def on_train_begin(self, trainer):
        self._open(trainer.epoch, trainer.step)

    def on_gradients(self, trainer, x, y, loss):
        if trainer.step % self.monitor.every:
            return
        from tensorboardX.proto.summary_pb2 import Summary

        # one event per step holding every value: a queue hand-off per value would cost more than the step
        values = []
        norms = np.sqrt(trainer.grad_sq[self.monitor.kernel_slots])
        for (watched, layer, act_layer), norm in zip(self.monitor.watched, norms):
            name = f"{watched.index:02d}_{watched.name}"
            values.append(Summary.Value(tag=f"grad_norm/{name}", simple_value=float(norm)))
            for kind, array in (("weights", layer.params["kernel"]), ("gradients", layer.grads["kernel"])):
                values += _histogram(f"{kind}/{name}", array)
            values += _histogram(f"activations/{name}", act_layer.A)
        noise = self.monitor.last_noise  # the monitor, called first, has recorded this step
        if noise is not None and noise[0] == trainer.step + 1:
            b_simple = self.noise.add(noise[1], noise[2])
            if math.isfinite(b_simple):  # none yet, or all noise: no point to draw
                values.append(Summary.Value(tag="noise_scale", simple_value=float(b_simple)))
        self.writers["steps"].file_writer.add_summary(Summary(value=values), trainer.step + 1)

    def on_epoch_end(self, trainer, epoch, logs):
        from tensorboardX.proto.summary_pb2 import Summary

        values: dict[str, list] = {name: [] for name in self.writers}
        for column, value in logs.items():
            if column in _SKIP or isinstance(value, str) or value is None:
                continue
            writer, tag = scalar_tag(column)
            if writer in values and math.isfinite(value):
                values[writer].append(Summary.Value(tag=tag, simple_value=float(value)))
        for name, w in self.writers.items():
            if values[name]:
                w.file_writer.add_summary(Summary(value=values[name]), epoch + 1)
            w.flush()  # on disk before the checkpoint that counts this epoch done

    def on_train_end(self, trainer):
        self.close()


def _histogram(tag: str, values: np.ndarray) -> list:
    """A histogram summary value of the array's finite entries (none when it has none)."""
    from tensorboardX.proto.summary_pb2 import HistogramProto, Summary

    values = values.ravel()
    mask = np.isfinite(values)
    finite = values if mask.all() else values[mask]  # a NaN or infinity has no bucket
    if not finite.size:
        return []
    f64 = finite.astype(np.float64, copy=False)
    binned = _bins(f64)
    if binned is None:
        return []
    counts, edges = binned
    histo = HistogramProto(
        min=float(edges[0]),
        max=float(edges[-1]),
        num=int(f64.size),
        sum=float(f64.sum()),
        sum_squares=float(np.dot(f64, f64)),
        bucket_limit=edges[1:].tolist(),
        bucket=counts.tolist(),
    )
    return [Summary.Value(tag=tag, histo=histo)]


def _bins(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Counts and edges of HISTOGRAM_BINS equal buckets from the minimum to the maximum, by one bincount (np.histogram
    and tensorboardX's add_histogram cost ten times as much on the small arrays of every recorded step). A value
    on an edge may fall in the bucket beside NumPy's. None where the range has no finite width."""
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:  # as NumPy: one value spreads over [lo - 0.5, lo + 0.5]
        lo, hi = lo - 0.5, hi + 0.5
    width = hi - lo
    if not (math.isfinite(width) and width > 0):  # beyond 2**52 the half step vanishes; past float max, inf
        return None
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    index = ((x - lo) * (HISTOGRAM_BINS / width)).astype(np.intp)
    np.clip(index, 0, HISTOGRAM_BINS - 1, out=index)  # the maximum belongs to the last bucket, as in NumPy
    return np.bincount(index, minlength=HISTOGRAM_BINS), edges


def _as_markdown(text: str) -> str:
    # TensorBoard renders text as Markdown: indented, the YAML is a code block
    return "\n".join("    " + line for line in text.splitlines())
