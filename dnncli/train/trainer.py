"""The training loop: epochs of shuffled batches, optimizer steps, callbacks.

Each epoch permutes the training set once into a contiguous buffer (one
gather), and batches are then plain slices of it: nothing per sample in
Python. The loop itself never prints; callbacks observe it.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np

from dnncli.errors import check_bool, check_int
from dnncli.nn import losses as losses_mod
from dnncli.nn import optimizers as optimizers_mod


class Callback:
    """Hooks called by ``Trainer``; any may set ``trainer.stop_training``.

    ``on_gradients`` runs after the backward pass and before the optimizer
    step, while ``model.gradients`` and the layers' caches hold this batch.
    """

    def on_train_begin(self, trainer) -> None: ...
    def on_epoch_begin(self, trainer, epoch: int) -> None: ...
    def on_gradients(self, trainer, x, y, loss) -> None: ...
    def on_batch_skipped(self, trainer, err: NonFiniteLoss) -> None: ...
    def on_batch_end(self, trainer, step: int, logs: dict) -> None: ...
    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, trainer) -> None: ...


class NonFiniteLoss(Exception):
    """A batch's loss or gradients became NaN or infinite; raised before the optimizer step.

    ``stage`` is where the first non-finite value is: "update" (the weights,
    from the previous step), "moving statistics" (a batch normalization layer's
    batch statistics, kept out of its moving ones), "forward activation", "loss"
    or "gradient";
    ``layer`` the index of the layer, or None.
    """

    def __init__(self, epoch, step, batch_start, batch_size, value, stage="loss", layer=None):
        super().__init__(f"non-finite {stage} at epoch {epoch + 1}, step {step + 1}")
        self.epoch, self.step, self.value = epoch, step, value
        self.batch_start, self.batch_size = batch_start, batch_size
        self.stage, self.layer = stage, layer
        self.whole_epoch = False  # with skip_batch: every batch of the epoch was skipped, this the first


class Interrupted(Exception):
    """Training stopped at a batch boundary because ``request_stop`` was called."""


@dataclass
class EpochPosition:
    """Where an unfinished epoch stands: its order, the next batch, and its running sums."""

    perm: np.ndarray | None
    next_start: int = 0
    data_sum: float = 0.0
    penalty_sum: float = 0.0
    skipped_samples: int = 0


class Trainer:
    """Mini-batch gradient descent over a model, resumable at any batch boundary.

    Parameters
    ----------
    model : Sequential
        The model to train.
    loss : Loss or spec
        The data loss.
    optimizer : Optimizer or spec
        Updates the model's trainable weights.
    batch_size : int, default=32
        Samples per update; the training-set size gives batch mode, 1 stochastic mode.
    shuffle : bool, default=True
        Permute the training set at every epoch, with a generator seeded by ``seed``.
    seed : int or None, default=None
        Seed of the shuffling generator.
    """

    def __init__(self, model, loss, optimizer, batch_size: int = 32, shuffle: bool = True, seed: int | None = None):
        self.model = model
        self.loss = losses_mod.get(loss, "loss")
        self.optimizer = optimizers_mod.get(optimizer, "optimizer")
        self.batch_size = check_int(batch_size, "training.batch_size")
        self.shuffle = check_bool(shuffle, "training.shuffle")
        self.rng = np.random.default_rng(seed)
        self.epoch = 0  # epochs completed
        self.step = 0  # updates done
        self.position: EpochPosition | None = None
        self.stop_training = False
        self.stop_requested = False
        self.last_learning_rate = self.optimizer.learning_rate
        self.callbacks: list[Callback] = []
        self.grad_sq = np.zeros(len(model.gradients))  # squared L2 norm of each gradient, this step
        self.on_nonfinite = "stop"  # or "skip_batch": leave the weights alone and go on
        self.skipped: list[NonFiniteLoss] = []
        self.augment = None  # callable(x_batch, rng), applied in place to each gathered batch
        # one weight per training sample (from class_weight), applied to its loss and gradient; None: all 1
        self.sample_weight: np.ndarray | None = None
        self.augment_seed = 0 if seed is None else seed
        # BLAS threads (``threads.ThreadPolicy``, from training.threads), told each step's time; None: the
        # library's own count, as a plain NumPy program has it
        self.threads = None
        self._buffers: dict = {}

    def prepare(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Inputs in the model's dtype and targets in the loss's layout, converted once."""
        x = self.model.check_inputs(x)
        y = self.loss.prepare_targets(y, int(np.prod(self.model.output_shape)), self.model.dtype)
        return x, y

    def request_stop(self) -> None:
        """Stop after the current batch (from a signal handler, say), raising ``Interrupted``."""
        self.stop_requested = True

    def _variables(self):
        # one flat vector updates all parameters in a few passes; per-variable clipnorm needs the pieces
        if self.optimizer.per_variable:
            return self.model.trainable_weights, self.model.gradients
        return [self.model.flat_weights], [self.model.flat_gradients]

    def _batch(self, x, y, perm, start: int):
        """The batch at ``start`` of this epoch's order: a view, or gathered into a reused buffer."""
        end = min(start + self.batch_size, len(x))
        if self.augment is None:
            if perm is None:
                return x[start:end], y[start:end]
            if end - start == 1:  # stochastic mode: the sample itself, no gather
                j = perm[start]
                return x[j : j + 1], y[j : j + 1]
        shape = (end - start,)
        xb = self._buffers.get(("x", shape))
        if xb is None:
            if len(self._buffers) > 8:
                self._buffers.clear()
            xb = self._buffers[("x", shape)] = np.empty(shape + x.shape[1:], x.dtype)
            self._buffers[("y", shape)] = np.empty(shape + y.shape[1:], y.dtype)
        yb = self._buffers[("y", shape)]
        if perm is None:
            np.copyto(xb, x[start:end])
            np.copyto(yb, y[start:end])
        else:
            # one gather per batch from the epoch's permutation: the batch lands in cache, ready for the
            # first matrix product, and no copy of the whole training set is ever made
            # (mode="clip": the indices are valid, and mode="raise" would gather through a temporary)
            np.take(x, perm[start:end], axis=0, out=xb, mode="clip")
            np.take(y, perm[start:end], axis=0, out=yb, mode="clip")
        if self.augment is not None:
            # a generator per (epoch, batch): a resumed epoch sees exactly the same inputs
            self.augment(xb, np.random.default_rng([self.augment_seed, 0xA06, self.epoch, start]))
        return xb, yb

    def _batch_weights(self, perm, start: int, n: int) -> np.ndarray | None:
        """The sample weights of the batch at ``start`` of this epoch's order, or None."""
        if self.sample_weight is None:
            return None
        return self.sample_weight[start : start + n] if perm is None else self.sample_weight[perm[start : start + n]]

    def train_step(self, xb, yb, batch_start: int = 0, sample_weight=None) -> tuple[float, float]:
        """One update; returns (data loss, penalty) of the batch before the update.

        ``sample_weight``: the batch's weights (``sum(w_i * l_i) / N`` is the data loss), or None.
        """
        batch_loss, grads = self.model.compute_gradients(xb, yb, self.loss, sample_weight)
        sq = self.grad_sq
        for j, g in enumerate(grads):
            sq[j] = np.vdot(g, g)
        # the squared norms catch a NaN or infinity anywhere, and serve the gradient monitor too
        finite = math.isfinite(sq.sum()) or self._finite_in_float64(grads)
        if not (math.isfinite(batch_loss.total) and finite) or self.model.state_nonfinite():
            stage, layer = self.model.find_nonfinite(batch_loss.total)
            err = NonFiniteLoss(self.epoch, self.step, batch_start, len(xb), batch_loss.total, stage, layer)
            if self.on_nonfinite == "skip_batch" and stage != "update":
                self.skipped.append(err)
                for cb in self.callbacks:
                    cb.on_batch_skipped(self, err)
                return math.nan, math.nan
            raise err
        for cb in self.callbacks:
            cb.on_gradients(self, xb, yb, batch_loss)
        self.last_learning_rate = self.optimizer.learning_rate
        variables, grads = self._variables()
        self.optimizer.apply(variables, grads)
        self.step += 1
        return batch_loss.data, batch_loss.penalty

    def _finite_in_float64(self, grads) -> bool:
        """A float32 dot product overflows above a norm of about 1.8e19: take the squared norms in float64."""
        sq = self.grad_sq
        for j, g in enumerate(grads):
            if not np.isfinite(g).all():
                return False
            sq[j] = np.vdot(g.astype(np.float64), g)
        return math.isfinite(sq.sum())

    def run_epoch(self, x, y) -> dict:
        """Finish the current epoch (or run a new one); return its logs."""
        n = len(x)
        if self.position is None:
            # one batch of everything needs no order: its mean gradient is the same in any
            shuffled = self.shuffle and self.batch_size < n
            self.position = EpochPosition(self.rng.permutation(n) if shuffled else None)
            for cb in self.callbacks:
                cb.on_epoch_begin(self, self.epoch)
        pos = self.position
        threads = self.threads
        for start in range(pos.next_start, n, self.batch_size):
            xb, yb = self._batch(x, y, pos.perm, start)
            began = time.perf_counter()
            data, penalty = self.train_step(xb, yb, start, self._batch_weights(pos.perm, start, len(xb)))
            if threads is not None:
                threads.observe(time.perf_counter() - began)
            pos.next_start = start + len(xb)
            if math.isnan(data):  # a skipped batch counts in neither the loss nor the sample count
                pos.skipped_samples += len(xb)
            else:
                pos.data_sum += data * len(xb)
                pos.penalty_sum += penalty * len(xb)
            for cb in self.callbacks:
                logs = {"loss": data + penalty, "data_loss": data, "batch_start": start, "n": n}
                cb.on_batch_end(self, self.step, logs)
            if self.stop_requested and pos.next_start < n:
                raise Interrupted()
        if n and pos.skipped_samples == n:
            # nothing was learned and there is no loss to log (0 would read as perfect): stop as "stop" does
            first = next(e for e in self.skipped if e.epoch == self.epoch)
            first.whole_epoch = True
            raise first
        m = max(n - pos.skipped_samples, 1)
        logs = {
            "loss": (pos.data_sum + pos.penalty_sum) / m,
            "data_loss": pos.data_sum / m,
            "penalty": pos.penalty_sum / m,
        }
        self.position = None
        epoch = self.epoch
        self.epoch += 1
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, logs)
        return logs

    def fit(self, x, y, epochs: int = 1, callbacks=(), prepared: bool = False) -> list[dict]:
        """Train until ``epochs`` epochs are complete in all; return one dict of logs per epoch run.

        The logs hold ``loss`` (data loss plus penalty, the mean over the
        epoch's samples), ``data_loss`` and ``penalty``, plus whatever the
        callbacks add. Raises ``NonFiniteLoss`` or ``Interrupted``.
        """
        epochs = check_int(epochs, "training.epochs", minimum=0)
        if not prepared:
            x, y = self.prepare(x, y)
        self.callbacks = list(callbacks)
        history = []
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        with self.threads.active() if self.threads is not None else contextlib.nullcontext():
            while self.epoch < epochs and not self.stop_training:
                history.append(self.run_epoch(x, y))
                if self.stop_requested and self.epoch < epochs and not self.stop_training:
                    raise Interrupted()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return history
