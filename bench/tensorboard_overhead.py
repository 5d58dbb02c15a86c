"""Cost of TensorBoard logging: the same run with ``training.tensorboard`` off and on, interleaved.

Trains a config (default: the quickstart, which records every step, so the histograms are written every
step) A B A B ... in one process, and prints the median wall time of each, their ratio, and the size of
the event files.

    python bench/tensorboard_overhead.py [--config configs/quickstart.yaml] [--rounds 3] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dnncli.experiment import api

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args()
    times = {False: [], True: []}
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for on in (False, True):
                out = Path(tmp) / f"{r}-{on}"
                overrides = [*a.overrides, f"training.tensorboard={str(on).lower()}"]
                start = time.perf_counter()
                api.train(a.config, overrides, out=out)
                times[on].append(time.perf_counter() - start)
                if on:
                    size = sum(f.stat().st_size for f in (out / "tensorboard").rglob("*") if f.is_file())
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{Path(a.config).name}: without {off:.2f} s, with TensorBoard {on:.2f} s (median of {a.rounds}):")
    print(f"  ratio {on / off:.2f}x; event files {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
