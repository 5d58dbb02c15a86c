"""Where dnncli's training time goes, sampled by py-spy, on the Fashion-MNIST network of bench/peers.py.

Trains the network of one mode of bench/peers.py (one epoch after a warm-up) under
``py-spy record`` and prints the share of the training loop's samples spent in each
dnncli function (inclusive: the function and what it calls) and on each source line
(self time). py-spy samples the Python thread only: time in OpenBLAS's worker
thread is not counted, time the main thread waits for it is.

    pip install py-spy
    python bench/loop_profile.py [--mode minibatch|stochastic|full|bn] [--rate 250] [--top 15]

Uses $DNN_DATASETS/fashion-mnist when set, else random data of the same shapes.
"""

from __future__ import annotations

import argparse
import collections
import linecache
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(mode: str) -> None:
    sys.path.insert(0, str(HERE))
    import peers

    spec = peers.MODES[mode]
    x, y = peers.load(spec["samples"])
    run = peers.dnncli_runner(mode == "bn")
    batch = min(spec["batch"], spec["samples"])
    run(x[:2000], y[:2000], min(batch, 2000), 1)
    elapsed = run(x, y, batch, spec["epochs"])
    print(f"{mode}: {spec['samples'] * spec['epochs'] / elapsed:,.0f} samples/s under the profiler")


def summarize(raw: Path, top: int) -> None:
    inclusive: collections.Counter = collections.Counter()
    lines: collections.Counter = collections.Counter()
    total = 0
    for text in raw.read_text().splitlines():
        stack, _, count = text.rpartition(" ")
        frames = stack.split(";")
        if not any(f.startswith("Trainer.fit ") for f in frames):
            continue  # data loading and warm-up set-up
        n = int(count)
        total += n
        ours = [f for f in frames if "dnncli/" in f]
        for name in {f.split(" (")[0] for f in ours}:
            inclusive[name] += n
        # self time of the innermost dnncli line: numpy's own Python wrappers count towards their caller
        if ours:
            lines[ours[-1]] += n
    if not total:
        sys.exit("no samples in the training loop: was the run too short?")
    print(f"\n{total} samples in Trainer.fit\n\ninclusive share, by dnncli function")
    for name, n in inclusive.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\nself share, by dnncli source line (with the numpy calls it makes)")
    for name, n in lines.most_common(top):
        func, _, where = name.partition(" (")
        path, _, line = where.rstrip(")").rpartition(":")
        source = linecache.getline(str(HERE.parent / path), int(line)).strip() if line.isdigit() else ""
        print(f"  {100 * n / total:5.1f}%  {func} ({path}:{line})  {source}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="minibatch", choices=["minibatch", "stochastic", "full", "bn"])
    parser.add_argument("--rate", type=int, default=250, help="samples per second (py-spy --rate)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.mode)
        return
    spy = shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "profile.txt"
        cmd = [spy, "record", "--rate", str(args.rate), "--format", "raw", "--output", str(raw), "--nonblocking"]
        cmd += ["--", sys.executable, __file__, "--child", "--mode", args.mode]
        subprocess.run(cmd, check=True)
        summarize(raw, args.top)


if __name__ == "__main__":
    main()
