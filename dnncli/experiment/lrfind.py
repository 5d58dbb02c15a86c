"""``dnn lr-find``: the learning-rate range test (Smith 2015; fastai's lr_find, Lightning's Tuner.lr_find).

From the config's initial weights, train with the learning rate growing exponentially from ``min_lr`` to
``max_lr`` over ``steps`` steps, and record each batch's loss. Stop when the smoothed loss diverges (four times
its best) or becomes non-finite. Suggest two rates: where the smoothed loss falls fastest against log(rate),
and the rate of its minimum divided by 10. No weights are saved and no run directory is made.
"""

from __future__ import annotations

import math

import numpy as np

from dnncli.errors import DnnError, check_float, check_int, plural
from dnncli.train.trainer import Callback, Interrupted, NonFiniteLoss

SMOOTHING = 0.98  # of the exponential moving average of the loss, with fastai's bias correction
DIVERGED = 4.0  # the smoothed loss this many times its best: stop


class _RangeTest(Callback):
    def __init__(self, rates: np.ndarray):
        self.rates = rates
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._avg = 0.0
        self.stopped = ""

    def on_train_begin(self, trainer):
        trainer.optimizer.learning_rate = float(self.rates[0])

    def on_batch_end(self, trainer, step, logs):
        loss = logs["loss"]
        self.losses.append(loss)
        i = len(self.losses)
        self._avg = SMOOTHING * self._avg + (1 - SMOOTHING) * loss
        smooth = self._avg / (1 - SMOOTHING**i)
        self.smoothed.append(smooth)
        best = min(self.smoothed)
        if not math.isfinite(smooth) or (i > 1 and smooth > DIVERGED * best):
            self.stopped = f"the smoothed loss diverged at rate {self.rates[i - 1]:.3g}"
            trainer.request_stop()
        elif i >= len(self.rates):
            trainer.request_stop()
        else:
            trainer.optimizer.learning_rate = float(self.rates[i])


def lr_find(config, min_lr: float = 1e-7, max_lr: float = 10.0, steps: int = 100) -> dict:
    """Run the range test on ``config``; return the rates, losses, smoothed losses and the suggestions."""
    from dnncli.experiment.prepare import build_trainer, prepare_data

    min_lr = check_float(min_lr, "--min", 0.0, low_open=True)
    max_lr = check_float(max_lr, "--max", 0.0, low_open=True)
    steps = check_int(steps, "--steps", minimum=5)
    if max_lr <= min_lr:
        raise DnnError(f"--max must be larger than --min. Received: --min {min_lr:g} --max {max_lr:g}")
    if isinstance(config["optimizer"]["learning_rate"], dict):
        config = config.replaced(("optimizer", "learning_rate"), min_lr)  # a schedule: the test sets the rate
    model = config.build_model()
    loss = config.build_loss()
    data = prepare_data(config, model, loss)
    trainer = build_trainer(config, model, loss, len(data.x_train), data.sample_weight)
    trainer.on_nonfinite = "stop"
    rates = np.geomspace(min_lr, max_lr, steps)
    test = _RangeTest(rates)
    per_epoch = math.ceil(len(data.x_train) / trainer.batch_size)
    try:
        with np.errstate(all="ignore"):
            trainer.fit(
                data.x_train, data.y_train, epochs=math.ceil(steps / per_epoch), callbacks=[test], prepared=True
            )
    except Interrupted:
        pass
    except NonFiniteLoss as err:
        test.stopped = f"the loss became non-finite at rate {rates[min(err.step, steps - 1)]:.3g}"
    n = len(test.losses)
    if n < 5:
        raise DnnError(f"lr-find: only {plural(n, 'step')} ran before {test.stopped}; lower --min.")
    used = rates[:n]
    smoothed = np.array(test.smoothed)
    steepest, best = _suggest(used, smoothed)
    return {
        "config": config.name,
        "rates": used.tolist(),
        "losses": test.losses,
        "smoothed": smoothed.tolist(),
        "steps": n,
        "stopped": test.stopped or f"{plural(n, 'step')} ran, up to rate {used[-1]:.3g}",
        "min_loss_rate": best,
        "suggestions": {"steepest": steepest, "min_over_10": best / 10},
        "suggested": best / 10,  # fastai's lr_min: the more robust of the two on noisy losses
        "command": f"--set optimizer.learning_rate={best / 10:.3g}",
    }


def _suggest(rates: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """(rate of the steepest fall, rate of the minimum) of the smoothed loss, as fastai and Lightning take them.

    The first steps (10, or a fifth of a short test), where the running average is still settling, are left
    out of the slope and of the minimum (there the average is a batch or two: a lucky first batch of 16 samples
    would otherwise be the minimum, and 1e-8 the suggestion); the slope is taken against log(rate).
    """
    finite = np.isfinite(smoothed)
    rates, smoothed = rates[finite], smoothed[finite]
    start = min(10, len(smoothed) // 5)
    best = start + int(np.argmin(smoothed[start:]))
    if best - start < 2:
        return float(rates[best]), float(rates[best])
    slope = np.gradient(smoothed[start : best + 1], np.log10(rates[start : best + 1]))
    return float(rates[start + int(np.argmin(slope))]), float(rates[best])


def plot_range_test(report: dict, out) -> None:
    """The smoothed loss against the rate (log scale), the suggestions marked; written atomically."""
    from dnncli.experiment.plot import _matplotlib
    from dnncli.files import atomic_write

    plt, _ = _matplotlib()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(report["rates"], report["losses"], color="0.75", lw=0.8, label="batch loss")
    ax.plot(report["rates"], report["smoothed"], lw=2, label=f"smoothed loss (running mean, {SMOOTHING})")
    finite = [v for v in report["smoothed"] if math.isfinite(v)]
    if finite:
        ax.set_ylim(min(finite) - 0.05 * abs(min(finite)), min(max(finite), DIVERGED * min(finite)) * 1.1)
    for name, rate, style in (
        ("steepest descent", report["suggestions"]["steepest"], "--"),
        ("minimum / 10", report["suggestions"]["min_over_10"], ":"),
    ):
        ax.axvline(rate, ls=style, color="C3", label=f"{name}: {rate:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"learning-rate range test: {report['config']}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, dpi=110, format="png"), binary=True)
    plt.close(fig)
