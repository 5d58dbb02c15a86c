"""What an expectation measures on a finished run, by name, and the run's outcome it is measured on.

A measure is ``FAMILY.NAME``: ``final.val_loss`` (the last epoch's value), ``best.val_accuracy`` (the best epoch's),
``test.accuracy`` (on the test split), ``gap.loss`` (how much better the training split scores than the validation
split at the last epoch), ``epochs_to.val_accuracy >= 0.9`` (the first epoch that meets the bound), ``weights.zero``,
``weights.norm``, ``weights.max`` (the final kernels), ``time.epoch``, ``time.total`` (seconds), ``jitter.loss``
(how much the batch loss jumps from step to step), ``path.straightness`` (how straight a path the kernels took) and
``flags.vanishing`` (on how many layers a flag was raised).
``FAMILIES`` declares each family, its names and what it means, once: the parser, the errors and the docs read it.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnncli.diagnostics.flags import FLAGS
from dnncli.errors import DnnError, suggest
from dnncli.experiment.expect.bounds import Bound, parse_bound
from dnncli.train import metrics as metrics_mod

ZERO = 1e-3  # weights.zero counts kernel entries smaller than this in magnitude: Adam's L1 steps hover, never land
JITTER_FROM = 0.5  # jitter.loss reads the second half of the steps, where the loss has settled into its noise

# family -> (what NAME may be, what the measure is); NAME kinds: column, metric, or a fixed tuple of names
FAMILIES = {
    "final": ("column", "the value at the last epoch (final.epoch: the epochs run)"),
    "best": ("column", "the best value over the epochs (lowest loss, highest accuracy)"),
    "test": ("metric", "the test split's loss or metric, after training"),
    "gap": ("metric", "training's lead over validation at the last epoch: val_loss - loss, accuracy - val_accuracy"),
    "epochs_to": ("column", "the first epoch whose value meets a bound: epochs_to.val_accuracy >= 0.9"),
    "weights": (("zero", "norm", "max"), f"the final kernels: share below {ZERO:g} in size, L2 norm, largest size"),
    "time": (
        ("epoch", "total"),
        "training seconds: the median epoch's (one slow epoch on a busy machine aside), or all",
    ),
    "jitter": (("loss",), "the batch loss's mean step-to-step change over its level, in the second half of the steps"),
    "path": (
        ("straightness",),
        "how far the kernels got from their initial values over the length of the path they took, step by step"
        " (1: a straight line; near 0: back and forth); needs every step recorded (monitor.every: 1)",
    ),
    "flags": (FLAGS, "on how many layers the flag was raised (transient ones at initialization aside)"),
}
_EPOCHS_TO = re.compile(r"epochs_to\.(\w+)\s*(.+)")


@dataclass(frozen=True)
class Measure:
    """A parsed measure: its family, its name, and (``epochs_to``) the bound the epoch is found by."""

    family: str
    name: str
    bound: Bound | None = None

    def text(self) -> str:
        return f"{self.family}.{self.name}" + (f" {self.bound.text()}" if self.bound else "")

    @property
    def direction(self) -> str:
        """Which way is better, where that is the measure's own (min for losses, epochs, jitter, flags)."""
        if self.family in ("final", "best", "test"):
            return metrics_mod.direction(self.name)
        return "min"


def parse_measure(text, columns: list[str], metrics: list[str], what: str = "") -> Measure:
    """A measure from its name, checked against the run's logged ``columns`` and its ``metrics`` (with ``loss``);
    ``what``: where it was written, said first in an error."""
    at = f"{what}: " if what else ""
    if not isinstance(text, str) or "." not in text:
        raise DnnError(
            f"{at}a measure is FAMILY.NAME, such as final.val_loss or test.accuracy; families:"
            f" {', '.join(FAMILIES)}. Received: {text!r}"
        )
    m = _EPOCHS_TO.fullmatch(text.strip())
    if m is not None:
        name, bound = m.group(1), parse_bound(m.group(2), f"{at}{text}")
        _check_name("epochs_to", name, columns, metrics, at)
        return Measure("epochs_to", name, bound)
    family, name = text.strip().split(".", 1)
    if family not in FAMILIES:
        raise DnnError(f"{at}no measure family {family!r}.{suggest(family, FAMILIES)} Families: {', '.join(FAMILIES)}.")
    if family == "epochs_to":
        raise DnnError(f"{at}epochs_to needs a bound after the column: epochs_to.{name} >= 0.9. Received: {text!r}")
    _check_name(family, name, columns, metrics, at)
    return Measure(family, name)


def _check_name(family: str, name: str, columns: list[str], metrics: list[str], at: str) -> None:
    kind = FAMILIES[family][0]
    if kind == "column":
        allowed = [*columns, "epoch"] if family == "final" else list(columns)
    elif kind == "metric":
        allowed = ["loss", *metrics]
    else:
        allowed = list(kind)
    no_validation = "val_loss" not in columns
    hint = " Set training.validation_split (or data.validation_path) for val_ values." if no_validation else ""
    if name not in allowed:
        raise DnnError(
            f"{at}{family}.{name} is not measured by this run.{suggest(name, allowed)}"
            f" {family} takes: {', '.join(allowed)}.{hint if name.startswith('val_') else ''}"
        )
    if family == "gap" and no_validation:
        raise DnnError(f"{at}gap.{name} compares {name} with val_{name}, which this run does not log.{hint}")


class Outcome:
    """A finished run as expectations read it: how it ended, its history, flags, test scores, final kernels and
    batch losses. From the ``RunResult`` a training just returned where there is one (nothing read twice), else
    from the run directory's files (``dnn check``, a sweep's trials); each part is read once, when first asked."""

    def __init__(self, run_dir, result=None):
        self.run_dir = Path(run_dir)
        self.result = result
        self._cache: dict = {}

    def _once(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def status(self) -> str:
        """completed, early_stopped, nonfinite, interrupted, or unfinished (a directory with no end recorded)."""
        if self.result is not None:
            return self.result.status
        return self._once("status", self._status_from_files)

    def _status_from_files(self) -> str:
        from dnncli.experiment.rundir import nonfinite_event

        if (self.run_dir / "model.npz").exists():
            try:
                with np.load(self.run_dir / "checkpoint.npz", allow_pickle=False) as npz:
                    status = json.loads(str(npz["meta"])).get("status")
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                status = None
            return status if status in ("completed", "early_stopped") else "completed"
        return "nonfinite" if nonfinite_event(self.run_dir) is not None else "unfinished"

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "early_stopped")

    @property
    def history(self) -> list[dict]:
        if self.result is not None:
            return self.result.history
        return self._once("history", self._history_from_files)

    def _history_from_files(self) -> list[dict]:
        from dnncli.experiment.runfiles import read_history

        return read_history(self.run_dir) if (self.run_dir / "history.csv").exists() else []

    @property
    def flags(self) -> list[dict]:
        """Each flag raised: ``{"flag", "index", "layer", "transient"}``."""
        if self.result is not None:
            return self.result.flags
        return self._once("flags", self._flags_from_files)

    def _flags_from_files(self) -> list[dict]:
        from dnncli.experiment.inspection import inspect_run

        if not (self.run_dir / "gradients.csv").exists():
            return []
        report = inspect_run(self.run_dir)  # the monitor replayed on gradients.csv: the flags training raised
        return [
            {"flag": f.flag, "index": layer.index, "layer": layer.name, "transient": f.transient}
            for layer in report.layers
            for f in layer.flag_info
        ]

    @property
    def test(self) -> dict | None:
        """The test split's loss and metrics; None for a run that did not finish or keeps no test split."""
        if self.result is not None:
            return self.result.test
        return self._once("test", self._test_from_files)

    def _test_from_files(self) -> dict | None:
        from dnncli.experiment.evaluate import evaluate_run

        if not (self.run_dir / "model.npz").exists():
            return None
        try:
            return evaluate_run(self.run_dir)
        except DnnError:  # no test split (data.test_split: 0): nothing to measure there
            return None

    @property
    def kernels(self) -> list[np.ndarray]:
        """The final kernel of every layer that has one (``model.npz``); none for a run that did not finish."""
        return self._once("kernels", self._kernels)

    def _kernels(self) -> list[np.ndarray]:
        from dnncli.experiment.weights import read_weights

        path = self.run_dir / "model.npz"
        if not path.exists():
            return []
        return [a for k, a in sorted(read_weights(path).items()) if k.endswith(".kernel")]

    @property
    def step_losses(self) -> list[float]:
        from dnncli.experiment.rundir import read_step_records

        return self._once("losses", lambda: [r["loss"] for r in read_step_records(self.run_dir / "losses.csv")])


def measure(m: Measure, outcome: Outcome) -> float | None:
    """The value of ``m`` on ``outcome``; None where the run does not have it (no test split, stopped before)."""
    if m.family == "flags":
        return float(len({f["index"] for f in outcome.flags if f["flag"] == m.name and not f.get("transient")}))
    if m.family == "weights":
        return _weights(m.name, outcome.kernels)
    if m.family == "jitter":
        return _jitter(outcome.step_losses)
    if m.family == "path":
        return _straightness(outcome)
    if m.family == "test":
        test = outcome.test if outcome.finished else None
        return _number(test.get(m.name)) if test else None
    history = outcome.history
    if not history:
        return None
    if m.family == "time":
        times = [t for r in history if (t := _number(r.get("time"))) is not None]
        return (float(np.median(times)) if m.name == "epoch" else sum(times)) if times else None
    if m.family == "final":
        return _number(history[-1].get(m.name))
    if m.family == "gap":
        train, val = _number(history[-1].get(m.name)), _number(history[-1].get(f"val_{m.name}"))
        if train is None or val is None:
            return None
        return val - train if metrics_mod.direction(m.name) == "min" else train - val
    values = [v for r in history if (v := _number(r.get(m.name))) is not None]
    if m.family == "best":
        return (min if m.direction == "min" else max)(values) if values else None
    # epochs_to: the first epoch that meets the bound; a run that never did has no such epoch
    return next((float(r["epoch"]) for r in history if m.bound.holds(_number(r.get(m.name)))), math.inf)


def _number(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _weights(name: str, kernels: list[np.ndarray]) -> float | None:
    if not kernels:
        return None
    flat = np.concatenate([np.abs(k.astype(np.float64)).ravel() for k in kernels])
    if name == "zero":
        return float(np.mean(flat < ZERO))
    return float(np.sqrt(np.sum(flat**2))) if name == "norm" else float(flat.max())


def _jitter(losses: list[float]) -> float | None:
    tail = np.asarray([v for v in losses[int(len(losses) * JITTER_FROM) :] if math.isfinite(v)], np.float64)
    if len(tail) < 3 or np.mean(tail) <= 0:
        return None
    return float(np.mean(np.abs(np.diff(tail))) / np.mean(tail))


def _straightness(outcome: Outcome) -> float | None:
    """|W_end - W_start| / sum over steps of |W_t - W_t-1|, the kernels of every watched layer taken together: the
    steps' sizes from gradients.csv (update ratio x weight norm), the start rebuilt from the run's config (its seed),
    the end from model.npz. None where a step was not recorded (the path's length would be short)."""
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.rundir import read_step_records
    from dnncli.experiment.weights import read_weights

    kernels = outcome.kernels
    records = read_step_records(outcome.run_dir / "gradients.csv")
    steps = sorted({r["step"] for r in records})
    if not kernels or not steps or len(steps) != steps[-1]:
        return None
    squares = {}
    for r in records:
        squares[r["step"]] = squares.get(r["step"], 0.0) + (r["update_ratio"] * r["weight_norm"]) ** 2
    length = sum(math.sqrt(v) for v in squares.values() if math.isfinite(v))
    config = config_mod.load(outcome.run_dir / "config.yaml", check_paths=False)
    start = config.build_model().weights_dict()
    end = read_weights(outcome.run_dir / "model.npz")
    watched = {r["layer_index"] for r in records}
    net = math.sqrt(sum(float(np.sum((end[f"layer{i}.kernel"] - start[f"layer{i}.kernel"]) ** 2)) for i in watched))
    return net / length if length > 0 else None
