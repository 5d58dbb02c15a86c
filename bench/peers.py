"""dnncli against scikit-learn's MLPClassifier and PyTorch (CPU) on the Fashion-MNIST network.

784 inputs, dense 300 relu, dense 100 relu, dense 10 softmax; Adam; float32. Each peer trains
one epoch per round, interleaved and rotated (A B C, B C A, ...) in this one process, from a fresh
model each time, after one untimed warm-up epoch. Prints samples/s per round, the medians and the
ratios of dnncli to each peer. dnncli chooses its BLAS threads as `dnn train` does (training.threads: auto;
--threads N fixes them); the peers run with their own defaults. Peers that are not installed are skipped
(`pip install '.[bench]'`; PyTorch: `pip install torch==2.13.0`).

Modes: minibatch (batch 128, 60,000 samples), stochastic (batch 1, 5,000 samples),
full (the whole 60,000 samples per update; 3 updates per round), bn (batch 128 with batch
normalization after each hidden layer; dnncli and PyTorch only).

    python bench/peers.py [--modes minibatch,stochastic,full,bn] [--rounds 3] [--threads auto|N]

Uses $DNN_DATASETS/fashion-mnist when set, else random data of the same shapes.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import dnncli
from dnncli.train.threads import ThreadPolicy
from dnncli.train.trainer import Trainer

MODES = {
    "minibatch": {"batch": 128, "samples": 60000, "epochs": 1},
    "stochastic": {"batch": 1, "samples": 5000, "epochs": 1},
    "full": {"batch": 60000, "samples": 60000, "epochs": 3},
    "bn": {"batch": 128, "samples": 60000, "epochs": 1},
}


def load(n):
    if os.environ.get("DNN_DATASETS"):
        from dnncli.data.idx import read_idx

        d = Path(os.environ["DNN_DATASETS"]) / "fashion-mnist"
        x = read_idx(d / "train-images-idx3-ubyte.gz").reshape(-1, 784)[:n].astype(np.float32) / 255
        return x, read_idx(d / "train-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    rng = np.random.default_rng(0)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def dnncli_runner(bn: bool, threads="auto"):
    layers = []
    for units in (300, 100):
        layers.append({"type": "dense", "units": units, "activation": "relu"})
        if bn:
            layers.append({"type": "batch_normalization"})
    layers.append({"type": "dense", "units": 10, "activation": "softmax"})
    spec = {"input_shape": [784], "layers": layers}

    def run(x, y, batch, epochs):
        model = dnncli.build_model(spec, seed=0)
        trainer = Trainer(model, "sparse_categorical_crossentropy", "adam", batch, True, 0)
        # the thread count as dnn train chooses it (training.threads: auto, or --threads N)
        trainer.threads = ThreadPolicy(threads)
        xs, ys = trainer.prepare(x, y)
        start = time.perf_counter()
        trainer.fit(xs, ys, epochs=epochs, prepared=True)
        return time.perf_counter() - start

    return run


def sklearn_runner():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def run(x, y, batch, epochs):
        clf = MLPClassifier(
            hidden_layer_sizes=(300, 100),
            solver="adam",
            batch_size=batch,
            max_iter=epochs,
            shuffle=True,
            random_state=0,
            tol=0.0,
            n_iter_no_change=10**6,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            clf.fit(x, y)
            return time.perf_counter() - start

    return run


def torch_runner(bn: bool):
    import torch

    def run(x, y, batch, epochs):
        torch.manual_seed(0)
        layers = []
        for fan_in, units in ((784, 300), (300, 100)):
            layers += [torch.nn.Linear(fan_in, units), torch.nn.ReLU()]
            if bn:
                layers.append(torch.nn.BatchNorm1d(units))
        layers.append(torch.nn.Linear(100, 10))
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        start = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(len(xt))
            for s in range(0, len(xt), batch):
                idx = perm[s : s + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
        return time.perf_counter() - start

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="minibatch,stochastic,full,bn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", default="auto", help="dnncli's BLAS threads, as training.threads: auto (default) or a count"
    )
    args = parser.parse_args()
    x_all, y_all = load(60000)
    have_torch = importlib.util.find_spec("torch") is not None
    have_sklearn = importlib.util.find_spec("sklearn") is not None
    if have_torch:
        import torch

        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    for mode in args.modes.split(","):
        spec = MODES[mode]
        bn = mode == "bn"
        peers = {"dnncli": dnncli_runner(bn, args.threads if args.threads == "auto" else int(args.threads))}
        if have_sklearn and not bn:
            peers["scikit-learn"] = sklearn_runner()
        if have_torch:
            peers["pytorch"] = torch_runner(bn)
        n, batch, epochs = spec["samples"], min(spec["batch"], spec["samples"]), spec["epochs"]
        x, y = x_all[:n], y_all[:n]
        warm = min(n, 2000)
        for run in peers.values():
            run(x[:warm], y[:warm], min(batch, warm), 1)
        rates = {name: [] for name in peers}
        names = list(peers)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                elapsed = peers[name](x, y, batch, epochs)
                rates[name].append(n * epochs / elapsed)
        print(f"\n{mode}: batch {batch}, {n} samples, {epochs} epoch(s) per round, {args.rounds} rounds")
        med = {name: statistics.median(v) for name, v in rates.items()}
        for name, v in rates.items():
            print(f"  {name:13s} median {med[name]:10.0f} samples/s   rounds {[round(s) for s in v]}")
        for name in names[1:]:
            print(f"  dnncli / {name}: {med['dnncli'] / med[name]:.2f}x")


if __name__ == "__main__":
    main()
