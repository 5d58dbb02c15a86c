"""dnn sweep against the same trials run one after the other with dnn train, on this machine.

A grid of 8 trials (learning rate x batch size) of a config that trains for about 10 s (quickstart's spirals,
8,000 samples). Serial: 8 x dnn train.
Sweep: dnn sweep --workers 2 (each trial one core, one BLAS thread). Ray's fixed start-up (ray.init and its
workers) is timed apart, so that the trial phase can be compared with the serial runs.

    python bench/sweep_speedup.py [--epochs 40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RATES, BATCHES = [0.001, 0.003, 0.01, 0.03], [16, 64]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--samples", type=int, default=8000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
        base["training"] |= {"epochs": args.epochs, "callbacks": {}}
        base["data"]["n_samples"] = args.samples
        (tmp / "base.yaml").write_text(yaml.safe_dump(base))
        sweep = {
            "config": "base.yaml",
            "parameters": {"optimizer.learning_rate": {"values": RATES}, "training.batch_size": {"values": BATCHES}},
        }
        (tmp / "sweep.yaml").write_text(yaml.safe_dump(sweep))
        start = time.perf_counter()
        for lr in RATES:
            for batch in BATCHES:
                cmd = [
                    sys.executable,
                    "-m",
                    "dnncli",
                    "train",
                    str(tmp / "base.yaml"),
                    "--quiet",
                    "--out",
                    str(tmp / f"serial-{lr}-{batch}"),
                    "--set",
                    f"optimizer.learning_rate={lr}",
                    "--set",
                    f"training.batch_size={batch}",
                ]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        serial = time.perf_counter() - start
        code = (
            "import ray, time; t = time.perf_counter(); ray.init(num_cpus=2, include_dashboard=False); "
            "ray.get([ray.remote(lambda: 0).remote() for _ in range(2)]); print(time.perf_counter() - t)"
        )
        startup = float(
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env={"RAY_AIR_NEW_OUTPUT": "0", "PATH": ""},
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dnncli",
                "sweep",
                str(tmp / "sweep.yaml"),
                "--out",
                str(tmp / "sweep"),
                "--workers",
                "2",
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        swept = time.perf_counter() - start
    print(f"8 trials of quickstart, {args.samples} samples, {args.epochs} epochs, batch 16 and 64")
    print(f"serial dnn train x 8:        {serial:7.1f} s ({serial / 8:.1f} s per trial, start-up included)")
    print(f"dnn sweep --workers 2:       {swept:7.1f} s in all")
    print(f"  Ray start-up (init, 2 workers): {startup:5.1f} s")
    print(f"  trial phase:               {swept - startup:7.1f} s")
    print(f"speed-up of the trial phase: {serial / (swept - startup):.2f}x (overall {serial / swept:.2f}x)")


if __name__ == "__main__":
    main()
