"""dnn sweep against the same trials run one after the other with dnn train, on this machine.

A grid of 8 trials (learning rate x batch size) of a config that trains for a few seconds (quickstart's spirals,
8,000 samples, 60 epochs). Serial: 8 x dnn train, each a process of its own (start-up included, as a user runs
them). Sweep: dnn sweep --workers 2 (each trial one CPU, resources_per_trial's default, and one BLAS thread).
The sweep's time is split from its trials' own records (trial.json: when each started, how long it ran): Ray's
start-up (the driver's start, imports and ray.init, to the first trial's start), the trial phase (the first
trial's start to the last trial's end) and the end (results, ray.shutdown). The speed-up is the serial time over
the trial phase. Rounds alternate serial and sweep (the machine's load changes between them).

    python bench/sweep_speedup.py [--rounds 2] [--epochs 60] [--samples 8000]
        [--before DIR]   # also another checkout's dnncli (git archive OLD | tar -x -C DIR), in each round
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RATES, BATCHES = [0.001, 0.003, 0.01, 0.03], [16, 64]


def _env(checkout: str | None) -> dict:
    env = dict(os.environ)
    if checkout:  # the dnncli of another checkout, for a before/after in the same rounds
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH")]))
    return env


def serial(tmp: Path, tag: str, checkout: str | None = None) -> float:
    start = time.perf_counter()
    for lr in RATES:
        for batch in BATCHES:
            cmd = [sys.executable, "-m", "dnncli", "train", str(tmp / "base.yaml"), "--quiet"]
            cmd += ["--out", str(tmp / f"serial-{tag}-{lr}-{batch}")]
            cmd += ["--set", f"optimizer.learning_rate={lr}", "--set", f"training.batch_size={batch}"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=_env(checkout))
    return time.perf_counter() - start


def sweep(tmp: Path, tag: str, workers: int, checkout: str | None = None) -> dict:
    out = tmp / f"sweep-{tag}"
    cmd = [sys.executable, "-m", "dnncli", "sweep", str(tmp / "sweep.yaml"), "--out", str(out)]
    cmd += ["--workers", str(workers), "--quiet"]
    began = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=_env(checkout))
    ended = time.time()
    trials = []
    for path in out.glob("trials/*/trial.json"):
        t = json.loads(path.read_text())
        # a dnncli from before started_at: the record is written as the trial ends
        t.setdefault("started_at", path.stat().st_mtime - t["seconds"])
        trials.append(t)
    first = min(t["started_at"] for t in trials)
    last = max(t["started_at"] + t["seconds"] for t in trials)
    return {
        "total": ended - began,
        "startup": first - began,
        "trials": last - first,
        "end": ended - last,
        "threads": sorted({t.get("blas_threads") for t in trials}, key=str),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--before", help="another checkout's root: its serial runs and sweep too, in each round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
        base["training"] |= {"epochs": args.epochs, "callbacks": {}}
        base["data"]["n_samples"] = args.samples
        (tmp / "base.yaml").write_text(yaml.safe_dump(base))
        grid = {"optimizer.learning_rate": {"values": RATES}, "training.batch_size": {"values": BATCHES}}
        (tmp / "sweep.yaml").write_text(yaml.safe_dump({"config": "base.yaml", "parameters": grid}))
        load = os.getloadavg()
        code = {"this dnncli": None} | ({f"before ({args.before})": args.before} if args.before else {})
        serials: dict[str, list[float]] = {name: [] for name in code}
        sweeps: dict[str, list[dict]] = {name: [] for name in code}
        for r in range(args.rounds):
            for name, checkout in code.items():
                tag = f"{r}-{len(serials[name])}-{'b' if checkout else 'a'}"
                serials[name].append(serial(tmp, tag, checkout))
                sweeps[name].append(sweep(tmp, tag, args.workers, checkout))
                s, w = serials[name][-1], sweeps[name][-1]
                print(
                    f"round {r + 1}, {name}: serial {s:.1f} s; sweep {w['total']:.1f} s = Ray start-up"
                    f" {w['startup']:.1f} s + trial phase {w['trials']:.1f} s + end {w['end']:.1f} s (BLAS threads a"
                    f" trial: {w['threads']}); trial phase {s / w['trials']:.2f}x serial, overall {s / w['total']:.2f}x"
                )
    print(f"\n8 trials of quickstart, {args.samples} samples, {args.epochs} epochs, batch 16 and 64; medians:")
    for name in code:
        med = {k: statistics.median(w[k] for w in sweeps[name]) for k in ("total", "startup", "trials", "end")}
        s = statistics.median(serials[name])
        print(f"{name}:")
        print(f"  serial dnn train x 8:           {s:6.1f} s")
        print(f"  dnn sweep --workers {args.workers}:         {med['total']:6.1f} s in all")
        print(f"    Ray start-up (to the first trial): {med['startup']:5.1f} s")
        print(f"    trial phase:                  {med['trials']:6.1f} s")
        print(f"    end (results, shutdown):      {med['end']:6.1f} s")
        print(f"  speed-up of the trial phase: {s / med['trials']:.2f}x (overall {s / med['total']:.2f}x)")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load)}; after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
