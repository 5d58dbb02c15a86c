"""Peak memory (RSS) of training Fashion-MNIST, against twice the size of its train and test sets in float32.

Runs `dnn train configs/fashion_mnist.yaml --epochs 1` in a child process and reads its peak RSS.
Needs $DNN_DATASETS (the real files).

    DNN_DATASETS=../shared/datasets python bench/memory.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    if not os.environ.get("DNN_DATASETS"):
        sys.exit("set DNN_DATASETS to the folder holding fashion-mnist/")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "dnncli",
            "train",
            str(ROOT / "configs" / "fashion_mnist.yaml"),
            "--epochs",
            "1",
            "--out",
            str(Path(tmp) / "run"),
            "--quiet",
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux
    data = (60000 + 10000) * 784 * 4
    print(
        f"peak RSS {peak / 2**20:.0f} MiB; train + test in float32 {data / 2**20:.0f} MiB;"
        f" ratio {peak / data:.2f} (target: at most 2.00)"
    )


if __name__ == "__main__":
    main()
