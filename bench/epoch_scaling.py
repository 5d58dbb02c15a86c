"""Does a run's time grow linearly with its epochs? quickstart at batch 4 (400 steps an epoch, every step recorded).

Runs ``dnn train`` for 10 and for 40 epochs, alternating (these machines are noisy), and prints each time and
the ratio (40/10; 4 would be exactly linear with no start-up cost), then, from one in-process 80-epoch run, the
mean time of each tenth of the epochs: flat means the cost of an epoch does not grow with the run's length.

    python bench/epoch_scaling.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "quickstart.yaml"
OVERRIDES = ["--set", "training.batch_size=4", "--set", "training.callbacks={}"]


def cli_seconds(epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dnncli", "train", str(CONFIG), *OVERRIDES, "--epochs", str(epochs)]
        start = time.perf_counter()
        subprocess.run([*cmd, "--out", f"{tmp}/run", "--quiet"], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def epoch_profile(epochs: int = 80) -> list[float]:
    from dnncli.experiment.config import load
    from dnncli.experiment.run import Reporter, TrainingRun

    marks: list[float] = []

    class Marks(Reporter):
        def epoch_end(self, row, layers):
            marks.append(time.perf_counter())

    config = load(CONFIG, ["training.batch_size=4", "training.callbacks={}"])
    with tempfile.TemporaryDirectory() as tmp:
        run = TrainingRun.create(config, out=f"{tmp}/run", epochs=epochs, reporter=Marks())
        start = time.perf_counter()
        run.train()
    times = [b - a for a, b in zip([start, *marks[:-1]], marks)]
    tenth = epochs // 10
    return [statistics.mean(times[k : k + tenth]) for k in range(0, epochs, tenth)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ten, forty = [], []
    for _ in range(args.rounds):
        ten.append(cli_seconds(10))
        forty.append(cli_seconds(40))
    print(f"dnn train quickstart, batch 4: 10 epochs {[round(t, 2) for t in ten]} s,")
    print(f"                                40 epochs {[round(t, 2) for t in forty]} s")
    ratio = statistics.median(forty) / statistics.median(ten)
    print(f"ratio 40/10 of the medians: {ratio:.2f} (4.00 = linear, with no start-up cost)")
    profile = epoch_profile()
    print("80 epochs in process, mean ms per epoch by tenth:", " ".join(f"{1000 * t:.0f}" for t in profile))
    print(f"last tenth / first tenth: {profile[-1] / profile[0]:.2f} (1.00 = no growth)")


if __name__ == "__main__":
    main()
