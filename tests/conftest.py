import os

import numpy as np
import pytest

# the products' last bits depend on the BLAS thread count, and training.threads: auto chooses by the machine's load:
# one thread, for every test and every process a test starts, so that runs compare bit for bit
os.environ.setdefault("DNN_THREADS", "1")


def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar function ``f`` at every entry of ``x`` (modified in place, restored)."""
    grad = np.empty_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return grad


def rel_error(a, n):
    """max|a - n| relative to the larger gradient scale (floored above rounding noise)."""
    scale = max(np.abs(a).max(initial=0), np.abs(n).max(initial=0), 1e-7)
    return np.abs(a - n).max(initial=0) / scale


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def stopped_and_resumed(config, out, step: int, before_resume=None):
    """Train ``config`` into ``out``, stopped after ``step`` steps (as Ctrl-C does), then resumed to the end.

    ``before_resume()``, if given, runs in between. Returns the resumed run's ``(TrainingRun, RunResult)``.
    """
    from dnncli.experiment.run import TrainingRun
    from dnncli.train.trainer import Callback

    class StopAt(Callback):
        def on_batch_end(self, trainer, at, logs):
            if at == step:
                trainer.request_stop()

    cut = TrainingRun.create(config, out=out)
    cut.callbacks.insert(0, StopAt())
    assert cut.train().status == "interrupted"
    if before_resume is not None:
        before_resume()
    resumed = TrainingRun.open(out)
    assert resumed.trainer.step == step
    return resumed, resumed.train()
