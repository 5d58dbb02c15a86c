"""dnn, scikit-learn and PyTorch on a shared machine: idle, and with N busy processes beside them.

The Fashion-MNIST network (784-300-100-10, relu, Adam, batch 128, float32) on the same data: $DNN_DATASETS's
fashion-mnist when it is there, else random data of the same shapes. Each measurement is a whole process of its
own (imports and data load untimed): one untimed warm-up epoch on 2,000 samples, then --epochs epochs over 60,000
samples, timed, as samples/s. "busy" runs N processes that spin on a core each (`while True: pass`, N = cores - 1
by default: one core is left to the training) for the length of the measurement. Rounds interleave the
conditions and rotate the tools (idle A B C, busy A B C, idle B C A, ...). Prints each measurement, then the
medians and ratios: each tool's slowdown under load, and dnn's speed over each peer in each condition.

dnn trains as `dnn train` does (training.threads: auto, the BLAS threads chosen while training); --dnn-threads
none gives the NumPy default (as dnn did before threads were chosen), a number fixes it. Peers run with their own
defaults (scikit-learn's BLAS and PyTorch's OpenMP threads: one a core). scikit-learn and PyTorch are benchmark
peers, never dependencies of dnncli (`pip install '.[bench]' torch`); one not installed is left out.

    DNN_DATASETS=../shared/datasets python bench/contention.py [--rounds 3] [--busy 1] [--epochs 2]
        [--before DIR]   # also the dnn of another checkout (git archive OLD | tar -x -C DIR), in the same rounds
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TOOLS = ("dnn", "scikit-learn", "pytorch")
N_TRAIN, WARM, BATCH = 60000, 2000, 128


def load(n: int):
    """Fashion-MNIST's first ``n`` training images (scaled to [0, 1]) and labels, or random data of that shape."""
    root = Path(os.environ.get("DNN_DATASETS", "")) / "fashion-mnist"
    if os.environ.get("DNN_DATASETS") and (root / "train-images-idx3-ubyte.gz").exists():
        from dnncli.data.idx import read_idx

        x = read_idx(root / "train-images-idx3-ubyte.gz").reshape(-1, 784)[:n].astype(np.float32) / 255
        return x, read_idx(root / "train-labels-idx1-ubyte.gz")[:n].astype(np.int64), "fashion-mnist"
    rng = np.random.default_rng(0)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n), "random data of Fashion-MNIST's shape"


def train_dnn(x, y, epochs: int, threads: str) -> tuple[float, str]:
    import dnncli
    from dnncli.train.trainer import Trainer

    spec = {
        "input_shape": [784],
        "layers": [
            {"type": "dense", "units": 300, "activation": "relu"},
            {"type": "dense", "units": 100, "activation": "relu"},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
    }
    trainer = Trainer(dnncli.build_model(spec, seed=0), "sparse_categorical_crossentropy", "adam", BATCH, True, 0)
    if threads != "none":
        try:  # dnn train's trainer: training.threads
            from dnncli.train.threads import AUTO, ThreadPolicy
        except ImportError:  # a dnncli from before training.threads (PYTHONPATH=an older checkout): NumPy's default
            threads = "none (this dnncli has no training.threads)"
        else:
            trainer.threads = ThreadPolicy(AUTO if threads == "auto" else int(threads))
    xs, ys = trainer.prepare(x, y)
    start = time.perf_counter()
    trainer.fit(xs, ys, epochs=epochs, prepared=True)
    seconds = time.perf_counter() - start
    adaptive = getattr(getattr(trainer, "threads", None), "adaptive", None)
    note = f"threads {threads}" + (f", chose {adaptive.choices}" if adaptive is not None else "")
    return seconds, note


def train_sklearn(x, y, epochs: int) -> tuple[float, str]:
    return _peers().sklearn_runner()(x, y, BATCH, epochs), "its defaults"  # the peer bench/peers.py measures


def train_torch(x, y, epochs: int) -> tuple[float, str]:
    import torch

    return _peers().torch_runner(False)(x, y, BATCH, epochs), f"{torch.get_num_threads()} threads"


def _peers():
    """bench/peers.py, whose scikit-learn and PyTorch networks this benchmark times too (one definition of each)."""
    spec = importlib.util.spec_from_file_location("peers", Path(__file__).with_name("peers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(tool: str, epochs: int, dnn_threads: str) -> None:
    """One measurement, in this process: warm up, train, print one JSON line."""
    x, y, _ = load(N_TRAIN)
    run = {
        "dnn": lambda xs, ys, e: train_dnn(xs, ys, e, dnn_threads),
        "scikit-learn": train_sklearn,
        "pytorch": train_torch,
    }[tool]
    run(x[:WARM], y[:WARM], 1)
    seconds, note = run(x, y, epochs)
    print(json.dumps({"tool": tool, "samples_per_second": len(x) * epochs / seconds, "note": note}))


def measure(tool: str, args) -> dict:
    env = dict(os.environ)
    if tool == "dnn before":  # the same worker, importing the dnncli of another checkout
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.before, env.get("PYTHONPATH")]))
    name = "dnn" if tool == "dnn before" else tool
    cmd = [sys.executable, __file__, "--worker", name, "--epochs", str(args.epochs), "--dnn-threads", args.dnn_threads]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def spinners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()  # the spinners this script started, by their own handles
        p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="busy processes")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--dnn-threads", default="auto", help="auto (as dnn train), none (NumPy's default), or N")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--before", help="another checkout's root: its dnn measured too, in the same rounds")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.epochs, args.dnn_threads)
    have = {
        "dnn": True,
        "scikit-learn": importlib.util.find_spec("sklearn"),
        "pytorch": importlib.util.find_spec("torch"),
    }
    tools = [t for t in args.tools.split(",") if have.get(t)] + (["dnn before"] if args.before else [])
    _, _, data = load(10)
    print(f"{', '.join(tools)}; {data}; {os.cpu_count()} cores; busy: {args.busy} spinning process(es)")
    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rates: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        order = tools[r % len(tools) :] + tools[: r % len(tools)]
        for condition in ("idle", "busy"):
            procs = spinners(args.busy if condition == "busy" else 0)
            try:
                time.sleep(0.5 if procs else 0)  # the spinners running before the tool starts
                for tool in order:
                    m = measure(tool, args)
                    rates.setdefault((tool, condition), []).append(m["samples_per_second"])
                    rate, note = m["samples_per_second"], m["note"]
                    print(f"  round {r + 1} {condition:4s} {tool:12s} {rate:9,.0f} samples/s ({note})")
            finally:
                stop(procs)
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\nmedians of {args.rounds} rounds, samples/s (busy: {args.busy} busy process(es) beside the training)")
    print("| tool | idle | busy | slowdown under load | dnn / tool, idle | dnn / tool, busy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for tool in tools:  # "dnn before" is compared with dnn as a peer is
        idle, busy = med[(tool, "idle")], med[(tool, "busy")]
        vs = (
            ("-", "-")
            if tool == "dnn"
            else (f"{med[('dnn', 'idle')] / idle:.2f}x", f"{med[('dnn', 'busy')] / busy:.2f}x")
        )
        print(f"| {tool} | {idle:,.0f} | {busy:,.0f} | {idle / busy:.2f}x | {vs[0]} | {vs[1]} |")
    for tool in [t for t in tools if t not in ("dnn", "dnn before")] if args.before else []:
        idle, busy = (
            med[("dnn before", "idle")] / med[(tool, "idle")],
            med[("dnn before", "busy")] / med[(tool, "busy")],
        )
        print(f"dnn before / {tool}: idle {idle:.2f}x, busy {busy:.2f}x")


if __name__ == "__main__":
    main()
