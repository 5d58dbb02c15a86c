"""``dnn bench``: where a training step's time goes, on the user's own config.

A step is timed in its parts (batch gather, forward, loss, backward, optimizer,
gradient monitor, display), and the same matrix products as the step's, with
the same shapes, are timed alone: that gives this machine's matrix-product
peak at those shapes, and the step's efficiency, matrix-product time over step
time. Medians over the timed steps; nothing here asserts a speed.
"""

from __future__ import annotations

import io
import math
import statistics
import time

import numpy as np

from dnncli.layers import kernel_gradient


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


def bench_config(config, steps: int = 50, warmup: int = 5) -> dict:
    """Time ``steps`` training steps of the config, in parts; return the figures."""
    from dnncli.diagnostics.monitor import GradientMonitor
    from dnncli.display import LiveReporter
    from dnncli.run import prepare_data
    from dnncli.training import Trainer

    model = config.build_model()
    loss = config.build_loss()
    data = prepare_data(config, model, loss)
    t = config["training"]
    batch = config.batch_size(len(data.x_train))
    trainer = Trainer(model, loss, config.build_optimizer(), batch, t["shuffle"], config["seed"])
    monitor = GradientMonitor(model, config["monitor"])
    from rich.console import Console

    reporter = LiveReporter(Console(file=io.StringIO(), force_terminal=True, width=120))
    reporter.train_begin(
        {
            "run_dir": "bench",
            "name": config.name,
            "samples": len(data.x_train),
            "validation": 0,
            "batch_size": batch,
            "steps": 1,
            "epochs": 1,
            "start_epoch": 0,
            "metrics": [],
            "watched": [{"index": w.index, "name": w.name, "activation": w.activation} for w in monitor.layers],
            "params": 0,
            "resumed": False,
        }
    )
    x, y = data.x_train, data.y_train
    n = len(x)
    perm = trainer.rng.permutation(n) if t["shuffle"] and batch < n else None
    fused = model._fused(loss)
    parts = {k: [] for k in ("data", "forward", "loss", "backward", "optimizer", "monitor", "display")}
    totals = []
    variables, grads = trainer._variables()
    for i in range(warmup + steps):
        start = (i * batch) % max(n - batch + 1, 1) if batch < n else 0
        marks = [time.perf_counter()]
        xb, yb = trainer._batch(x, y, perm, start)
        marks.append(time.perf_counter())
        out = model.forward(xb, training=True)
        marks.append(time.perf_counter())
        if fused:
            Z = model.output_layer.logits
            loss.logits_forward(yb, Z, out)
            dZ = loss.logits_backward(yb, Z, out, out=model.output_layer._buffer("dlogits", Z.shape))
        else:
            loss.forward(yb, out)
            dZ = loss.backward(yb, out)
        marks.append(time.perf_counter())
        model.backward(dZ, skip_output_activation=fused)
        for reg, w, g in model._regularized:
            reg.add_gradient(w, g)
        marks.append(time.perf_counter())
        trainer.optimizer.apply(variables, grads)
        marks.append(time.perf_counter())
        for j, g in enumerate(model.gradients):
            trainer.grad_sq[j] = np.vdot(g, g)
        monitor.on_gradients(trainer, xb, yb, None)
        trainer.step += 1
        marks.append(time.perf_counter())
        reporter.batch_end(0, start + len(xb), n, 0.5)
        marks.append(time.perf_counter())
        if i >= warmup:
            for key, a, b in zip(parts, marks[:-1], marks[1:]):
                parts[key].append(b - a)
            totals.append(marks[-1] - marks[0])
    reporter.live.stop()
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
        "config": config.name,
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
