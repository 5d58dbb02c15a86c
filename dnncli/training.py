"""The training loop: epochs of shuffled batches, optimizer steps, callbacks.

Each epoch permutes the training set once into a contiguous buffer (one
gather), and batches are then plain slices of it: nothing per sample in
Python. The loop itself never prints; callbacks observe it.
"""

from __future__ import annotations

import math

import numpy as np

from dnncli import losses as losses_mod
from dnncli import optimizers as optimizers_mod
from dnncli.errors import check_bool, check_int


class Callback:
    """Hooks called by ``Trainer.fit``; any may set ``trainer.stop_training``."""

    def on_train_begin(self, trainer) -> None: ...
    def on_epoch_begin(self, trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer, step: int, logs: dict) -> None: ...
    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, trainer) -> None: ...


class Trainer:
    """Mini-batch gradient descent over a model.

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
        self.stop_training = False
        self._buffers: dict = {}

    def prepare(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Inputs in the model's dtype and targets in the loss's layout, converted once."""
        x = self.model.check_inputs(x)
        y = self.loss.prepare_targets(y, int(np.prod(self.model.output_shape)), self.model.dtype)
        return x, y

    def _variables(self):
        # one flat vector updates all parameters in a few passes; per-variable clipnorm needs the pieces
        if self.optimizer.per_variable:
            return self.model.trainable_weights, self.model.gradients
        return [self.model.flat_weights], [self.model.flat_gradients]

    def batches(self, x, y):
        """Yield (start, x_batch, y_batch) for one epoch, in this epoch's order."""
        n = len(x)
        if self.shuffle:
            perm = self.rng.permutation(n)
            xb = self._buffers.get("x")
            if xb is None or xb.shape != x.shape:
                xb = self._buffers["x"] = np.empty_like(x)
                self._buffers["y"] = np.empty_like(y)
            yb = self._buffers["y"]
            np.take(x, perm, axis=0, out=xb)
            np.take(y, perm, axis=0, out=yb)
            x, y = xb, yb
        for start in range(0, n, self.batch_size):
            yield start, x[start : start + self.batch_size], y[start : start + self.batch_size]

    def train_step(self, xb, yb) -> tuple[float, float]:
        """One update; returns (data loss, penalty) of the batch before the update."""
        batch_loss, _ = self.model.compute_gradients(xb, yb, self.loss)
        variables, grads = self._variables()
        self.optimizer.apply(variables, grads)
        self.step += 1
        return batch_loss.data, batch_loss.penalty

    def fit(self, x, y, epochs: int = 1, callbacks=(), prepared: bool = False) -> list[dict]:
        """Train for ``epochs`` more epochs; return one dict of logs per epoch.

        The logs hold ``loss`` (data loss plus penalty, the mean over the
        epoch's batches weighted by batch size), ``data_loss`` and ``penalty``.
        """
        epochs = check_int(epochs, "training.epochs", minimum=0)
        if not prepared:
            x, y = self.prepare(x, y)
        history = []
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin(self)
        for _ in range(epochs):
            epoch = self.epoch
            for cb in callbacks:
                cb.on_epoch_begin(self, epoch)
            data_sum = penalty_sum = 0.0
            for start, xb, yb in self.batches(x, y):
                data, penalty = self.train_step(xb, yb)
                data_sum += data * len(xb)
                penalty_sum += penalty * len(xb)
                for cb in callbacks:
                    cb.on_batch_end(self, self.step, {"loss": data + penalty, "batch_start": start})
            n = max(len(x), 1)
            logs = {"loss": (data_sum + penalty_sum) / n, "data_loss": data_sum / n, "penalty": penalty_sum / n}
            self.epoch += 1
            for cb in callbacks:
                cb.on_epoch_end(self, epoch, logs)
            history.append(logs)
            if self.stop_training or not math.isfinite(logs["loss"]):
                break
        for cb in callbacks:
            cb.on_train_end(self)
        return history

    def evaluate(self, x, y, batch_size: int = 1024, prepared: bool = False) -> float:
        """Mean data loss in inference mode (no dropout, moving batch-norm statistics)."""
        if not prepared:
            x, y = self.prepare(x, y)
        total = 0.0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            total += self.model.loss_value(xb, yb, self.loss) * len(xb)
        return total / max(len(x), 1)
