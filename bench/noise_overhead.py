"""Cost of the instruments the monitor records with each record: the gradient noise scale's two estimates and the
activation histograms, on a Fashion-MNIST network (default: configs/fashion_mnist_mlp.yaml, 784-300-100-10 relu,
every dense layer measured; --config fashion_mnist for the shipped network with batch normalization), or on any
shipped config with its own data (--config deep_sigmoid_20: twenty layers recorded at every step).

Trains one epoch with the instruments and one without (the monitor on in both), interleaved (A B, then B A), in
one process; prints the median epoch of each, their ratio, and the instruments' own time measured inside the
epoch (the direct figure, free of the epoch-to-epoch noise of a shared machine). Uses $DNN_DATASETS/fashion-mnist
when set, else random data of the same shapes (the cost does not depend on the values).

    python bench/noise_overhead.py [--rounds 5] [--samples 60000] [--batch B] [--every K] [--config NAME] [--epochs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from monitor_overhead import data  # noqa: E402  (the same data as the monitor's own benchmark)

from dnncli.diagnostics import histograms, noise  # noqa: E402
from dnncli.diagnostics import monitor as monitor_mod  # noqa: E402
from dnncli.diagnostics.instruments import EVERY  # noqa: E402
from dnncli.experiment import config as config_mod  # noqa: E402
from dnncli.train.trainer import Trainer  # noqa: E402

SPENT = [0.0]


def timed(fn):
    def wrapper(*args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            SPENT[0] += time.perf_counter() - start

    return wrapper


def epoch_time(cfg, x, y, batch: int, instruments: bool, own: list, epochs: int = 1) -> float:
    model = cfg.build_model()
    trainer = Trainer(model, cfg.build_loss(), cfg.build_optimizer(), batch, True, 0)
    xs, ys = trainer.prepare(x, y)
    monitor = monitor_mod.GradientMonitor(model, cfg["monitor"])
    monitor.instruments.on = instruments
    SPENT[0] = 0.0
    start = time.perf_counter()
    trainer.fit(xs, ys, epochs=epochs, callbacks=[monitor], prepared=True)
    elapsed = (time.perf_counter() - start) / epochs
    if instruments:
        own.append(SPENT[0] / (elapsed * epochs))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--batch", type=int, default=None, help="default: the config's")
    parser.add_argument("--every", type=int, default=None, help="monitor.every (default: the config's, 20 here)")
    parser.add_argument("--config", default="fashion_mnist_mlp")
    parser.add_argument("--epochs", type=int, default=1, help="epochs a round (a small config's epoch is short)")
    args = parser.parse_args()
    overrides = [f"monitor.every={args.every}"] if args.every else []
    cfg = config_mod.load(ROOT / "configs" / f"{args.config}.yaml", overrides, check_paths=False)
    # the instruments' own time: the noise estimates and the histograms, each call timed
    noise.dense_noise = timed(noise.dense_noise)
    histograms.histogram = timed(histograms.histogram)
    histograms.encode = timed(histograms.encode)
    if cfg["data"]["source"] == "idx":
        x, y, what = data(args.samples)
    else:  # the config's own training split, as dnn train prepares it
        from dnncli.experiment.prepare import prepare_data

        model, loss = cfg.build_model(), cfg.build_loss()
        prepared = prepare_data(cfg, model, loss)
        x, y, what = prepared.x_train, prepared.y_train, f"{cfg.name}'s data"
        args.samples = len(x)
    args.batch = args.batch or cfg.batch_size(len(x))
    off, on, own = [], [], []
    for r in range(args.rounds):
        for instruments in (False, True) if r % 2 == 0 else (True, False):
            (on if instruments else off).append(epoch_time(cfg, x, y, args.batch, instruments, own, args.epochs))
    every = monitor_mod.GradientMonitor(cfg.build_model(), cfg["monitor"]).every
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"{what}, {args.config}, {args.samples} samples, batch {args.batch}, monitor every={every}")
    print(f"{args.rounds} interleaved rounds; the instruments measure every {max(every, EVERY)} steps")
    print(f"epoch, monitor without the instruments: median {m_off:.3f} s  {[round(t, 3) for t in off]}")
    print(f"epoch, monitor with the instruments:    median {m_on:.3f} s  {[round(t, 3) for t in on]}")
    print(f"overhead, epoch against epoch: {100 * (m_on / m_off - 1):+.1f}%")
    share = 100 * statistics.median(own)
    print(f"the instruments' own time, measured inside the epoch: median {share:.2f}% of the epoch (target 3%)")


if __name__ == "__main__":
    main()
