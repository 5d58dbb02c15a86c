"""Cost of the gradient monitor with its default settings, on the Fashion-MNIST network.

Trains one epoch with the monitor and one without, interleaved (A B A B ...), in one process,
and prints the median time of each and their ratio. Uses $DNN_DATASETS/fashion-mnist when set,
else random data of the same shapes (the cost does not depend on the values).

    python bench/monitor_overhead.py [--rounds 5] [--samples 60000] [--batch 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from dnncli.diagnostics.monitor import GradientMonitor
from dnncli.experiment import config as config_mod
from dnncli.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def data(n):
    if os.environ.get("DNN_DATASETS"):
        from dnncli.data.idx import read_idx

        d = Path(os.environ["DNN_DATASETS"]) / "fashion-mnist"
        x = read_idx(d / "train-images-idx3-ubyte.gz")[:n].astype(np.float32) / 255
        y = read_idx(d / "train-labels-idx1-ubyte.gz")[:n].astype(np.int64)
        return x, y, "Fashion-MNIST"
    rng = np.random.default_rng(0)
    return rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n), "random data"


class TimedMonitor(GradientMonitor):
    """The monitor, timing its own work (a direct measure, free of the epoch-to-epoch noise)."""

    spent = 0.0

    def on_gradients(self, *args):
        start = time.perf_counter()
        super().on_gradients(*args)
        self.spent += time.perf_counter() - start

    def on_epoch_end(self, *args):
        start = time.perf_counter()
        super().on_epoch_end(*args)
        self.spent += time.perf_counter() - start


def epoch_time(cfg, x, y, batch: int, monitored: bool, own: list) -> float:
    model = cfg.build_model()
    trainer = Trainer(model, cfg.build_loss(), cfg.build_optimizer(), batch, True, 0)
    xs, ys = trainer.prepare(x, y)
    monitor = TimedMonitor(model, cfg["monitor"])
    start = time.perf_counter()
    trainer.fit(xs, ys, epochs=1, callbacks=[monitor] if monitored else [], prepared=True)
    elapsed = time.perf_counter() - start
    if monitored:
        own.append(monitor.spent / elapsed)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    cfg = config_mod.load(ROOT / "configs" / "fashion_mnist.yaml", check_paths=False)
    x, y, what = data(args.samples)
    off, on, own = [], [], []
    for r in range(args.rounds):  # A B, then B A: neither arm always runs first
        for monitored in (False, True) if r % 2 == 0 else (True, False):
            (on if monitored else off).append(epoch_time(cfg, x, y, args.batch, monitored, own))
    every = GradientMonitor(cfg.build_model(), cfg["monitor"]).every
    m_off, m_on = statistics.median(off), statistics.median(on)
    rounds = f"{args.rounds} interleaved rounds"
    print(f"{what}, {args.samples} samples, batch {args.batch}, monitor every={every}, {rounds}")
    print(f"epoch without monitor: median {m_off:.3f} s  {[round(t, 3) for t in off]}")
    print(f"epoch with monitor:    median {m_on:.3f} s  {[round(t, 3) for t in on]}")
    print(f"monitor overhead, epoch against epoch: {100 * (m_on / m_off - 1):+.1f}%")
    print(f"monitor's own time, measured inside the epoch: median {100 * statistics.median(own):.2f}% of the epoch")


if __name__ == "__main__":
    main()
