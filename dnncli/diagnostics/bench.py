"""``dnn bench``: where a training step's time goes, on the user's own config.

A step is timed in its parts (batch gather, forward, loss, backward, optimizer,
gradient monitor, display), and the same matrix products as the step's, with
the same shapes, are timed alone: that gives this machine's matrix-product
peak at those shapes, and the step's efficiency, matrix-product time over step
time. Medians over the timed steps; nothing here asserts a speed.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from dnncli.nn.layers import kernel_gradient
from dnncli.train import threads as threads_mod


def step_matmuls(model, batch: int) -> list[tuple[tuple, tuple, str]]:
    """(left shape, right shape, which operand is a transposed view) of each matrix product of a step."""
    shapes = []
    for layer in model.layers:
        if "kernel" not in layer.params:
            continue
        fan_in, units = layer.params["kernel"].shape
        shapes.append(((batch, fan_in), (fan_in, units), ""))  # Z = X W
        shapes.append(((fan_in, batch), (batch, units), "left"))  # dW = X^T dZ
        if layer.needs_input_grad:
            shapes.append(((batch, units), (units, fan_in), "right"))  # dX = dZ W^T
    return shapes


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_time(shapes, dtype, repeats: int = 20) -> float:
    """Median time of the step's matrix products alone, on preallocated arrays."""
    rng = np.random.default_rng(0)
    operands = []
    for a, b, transposed in shapes:
        # as in the step, the gradient products read transposed views, not copies
        left = rng.random(a[::-1], dtype=dtype).T if transposed == "left" else rng.random(a, dtype=dtype)
        right = rng.random(b[::-1], dtype=dtype).T if transposed == "right" else rng.random(b, dtype=dtype)
        operands.append((left, right, np.empty((a[0], b[1]), dtype)))

    def run():
        for (_, _, transposed), (left, right, out) in zip(shapes, operands):
            if transposed == "left":
                kernel_gradient(left.T, right, out)  # as the layer computes it (an outer product for one sample)
            else:
                np.matmul(left, right, out=out)

    run()
    return _median_time(run, repeats)


class _Clock:
    """Wraps methods of the objects of one training step, so that the real step is timed in its parts."""

    def __init__(self):
        self.spent: dict[str, float] = {}

    def wrap(self, owner, method: str, part: str) -> None:
        inner = getattr(owner, method)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.spent[part] = self.spent.get(part, 0.0) + time.perf_counter() - start

        setattr(owner, method, timed)  # on this instance only

    def take(self) -> dict[str, float]:
        out, self.spent = self.spent, {}
        return out


def thread_counts(cpus: int) -> list[int]:
    """The BLAS thread counts ``dnn bench`` times: each up to 8 CPUs, then powers of two and the CPUs."""
    if cpus <= 8:
        return list(range(1, cpus + 1))
    return sorted({2**k for k in range(cpus.bit_length()) if 2**k <= cpus} | {cpus})


def time_thread_counts(trainer, x, y, counts, blas, steps: int = 10, rounds: int = 3) -> dict[int, float]:
    """Median time of the trainer's step at each BLAS thread count, in ``rounds`` interleaved blocks of ``steps``
    (the first step after each switch not counted: it wakes or parks the threads)."""
    n, batch = len(x), trainer.batch_size
    perm = trainer.rng.permutation(n) if trainer.shuffle and batch < n else None
    times: dict[int, list[float]] = {c: [] for c in counts}
    i = 0
    for _ in range(rounds):
        for count in counts:
            blas.set(count)
            for j in range(steps + 1):
                start = (i * batch) % max(n - batch + 1, 1) if batch < n else 0
                i += 1
                began = time.perf_counter()
                trainer.train_step(*trainer._batch(x, y, perm, start), start)
                if j:
                    times[count].append(time.perf_counter() - began)
    return {c: statistics.median(v) for c, v in times.items()}


def bench_trainer(trainer, x, y, monitor, display, steps: int = 50, warmup: int = 5) -> dict:
    """Time ``steps`` calls of the trainer's own ``train_step``, in parts; return the figures.

    ``x`` and ``y`` are the prepared training split; ``monitor`` is a gradient
    monitor (a callback of the step) and ``display(done, total)`` what the
    training display does after each step (timed as the display's share). With a
    thread policy on the trainer (``training.threads``), the step is first timed
    at each BLAS thread count, and the rest at the count chosen: the fastest
    (``auto``) or the one given.
    """
    policy = trainer.threads
    if policy is None:
        return _bench_steps(trainer, x, y, monitor, display, steps, warmup)
    blas = threads_mod.BlasThreads()
    try:
        trainer.callbacks = [monitor]
        by_count = time_thread_counts(trainer, x, y, thread_counts(policy.cpus), blas)
        fastest = min(by_count, key=lambda c: (by_count[c], c))
        chosen = fastest if policy.setting == threads_mod.AUTO else policy.count
        blas.set(chosen)
        report = _bench_steps(trainer, x, y, monitor, display, steps, warmup)
    finally:
        blas.restore()
    return report | {
        "threads": {
            "setting": policy.setting,
            "usable_cpus": policy.cpus,
            "chosen": chosen,
            "step_seconds_by_threads": by_count,
        }
    }


def _bench_steps(trainer, x, y, monitor, display, steps: int, warmup: int) -> dict:
    model, loss, optimizer = trainer.model, trainer.loss, trainer.optimizer
    clock = _Clock()
    clock.wrap(trainer, "_batch", "data")
    clock.wrap(model, "forward", "forward")
    for method in ("forward", "backward", "logits_forward", "logits_backward"):
        if hasattr(loss, method):
            clock.wrap(loss, method, "loss")
    clock.wrap(model, "backward", "backward")
    clock.wrap(model, "penalty", "backward")
    clock.wrap(optimizer, "apply", "optimizer")
    clock.wrap(monitor, "on_gradients", "monitor")
    trainer.callbacks = [monitor]
    n = len(x)
    batch = trainer.batch_size
    perm = trainer.rng.permutation(n) if trainer.shuffle and batch < n else None
    parts = {k: [] for k in ("data", "forward", "loss", "backward", "optimizer", "monitor", "display")}
    totals = []
    for i in range(warmup + steps):
        start = (i * batch) % max(n - batch + 1, 1) if batch < n else 0
        began = time.perf_counter()
        xb, yb = trainer._batch(x, y, perm, start)
        trainer.train_step(xb, yb, start)
        mark = time.perf_counter()
        display(start + len(xb), n)
        ended = time.perf_counter()
        spent = clock.take()
        spent["display"] = ended - mark
        if i >= warmup:
            for key in parts:
                parts[key].append(spent.get(key, 0.0))
            totals.append(ended - began)
    step = statistics.median(totals)
    split = {k: statistics.median(v) for k, v in parts.items()}
    shapes = step_matmuls(model, batch)
    flops = sum(2 * a[0] * a[1] * b[1] for a, b, _ in shapes)
    mm = matmul_time(shapes, model.dtype)
    # forward and backward hold the products; what remains of them is activations, bias, batch norm, ...
    split_out = {
        "data": split["data"],
        "matrix products": mm,
        "activations and other layer work": max(split["forward"] + split["backward"] - mm, 0.0),
        "loss": split["loss"],
        "optimizer": split["optimizer"],
        "monitor": split["monitor"],
        "display": split["display"],
    }
    return {
        "batch_size": batch,
        "steps": steps,
        "step_seconds": step,
        "samples_per_second": batch / step,
        "gflops_per_step": flops / 1e9,
        "achieved_gflops": flops / step / 1e9,
        "matmul_peak_gflops": flops / mm / 1e9 if mm > 0 else math.nan,
        "efficiency": mm / step,
        "split_seconds": split_out,
    }
