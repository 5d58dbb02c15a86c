"""The single operations the README's performance section quotes, timed alone (medians, microseconds).

- the one-sample kernel gradient at 784x300: broadcast outer product against a matrix product
  with an inner dimension of 1;
- the batch gather of 128 rows of a 60,000 x 784 float32 set: np.take in "raise" mode (buffers
  its output through a temporary) against "clip" mode;
- the Adam update over the Fashion-MNIST network's 266,610 parameters, and its square-root and
  division passes alone.

    python bench/kernels.py [--repeats 500]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dnncli.nn import optimizers
from dnncli.nn.layers import kernel_gradient


def median_us(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=500)
    r = parser.parse_args().repeats
    rng = np.random.default_rng(0)

    x, dz = rng.random((1, 784), dtype=np.float32), rng.random((1, 300), dtype=np.float32)
    dw = np.empty((784, 300), np.float32)
    print(
        f"one-sample dW 784x300: outer product {median_us(lambda: kernel_gradient(x, dz, dw), r):7.1f} us,"
        f" matrix product {median_us(lambda: np.matmul(x.T, dz, out=dw), r):7.1f} us"
    )

    data = rng.random((60000, 784), dtype=np.float32)
    perm = rng.permutation(60000)
    out = np.empty((128, 784), np.float32)
    starts = iter(range(0, 10**9, 128))

    def gather(mode):
        s = next(starts) % (60000 - 128)
        np.take(data, perm[s : s + 128], axis=0, out=out, mode=mode)

    print(
        f"gather 128 rows: take(mode='raise') {median_us(lambda: gather('raise'), r):7.1f} us,"
        f" take(mode='clip') {median_us(lambda: gather('clip'), r):7.1f} us"
    )

    n = 266_610
    w, g = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32) * 1e-2
    adam = optimizers.get("adam")
    adam.apply([w], [g])
    s, tmp = adam.slots[0]["v"], np.empty(n, np.float32)
    print(
        f"Adam over {n:,} parameters: whole update {median_us(lambda: adam.apply([w], [g]), r):7.1f} us,"
        f" its sqrt pass {median_us(lambda: np.sqrt(s, out=tmp), r):7.1f} us,"
        f" its division pass {median_us(lambda: np.divide(s, tmp, out=tmp), r):7.1f} us"
    )


if __name__ == "__main__":
    main()
