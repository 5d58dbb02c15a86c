"""``dnn inspect-gradients``, ``dnn gradcheck`` and ``dnn plot``: the diagnostics, as data.

The CLI renders what these functions return; they never print.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from dnncli.diagnostics import gradcheck, noise
from dnncli.diagnostics.advice import DataStats, advise
from dnncli.diagnostics.inspection_report import (
    FlagInfo,
    InspectionReport,
    LayerReport,
    LossSpan,
    NoiseScale,
    NonFinite,
)
from dnncli.diagnostics.monitor import GradientMonitor
from dnncli.errors import DnnError, check_float
from dnncli.train import threads
from dnncli.train.callbacks import StopAfter
from dnncli.train.trainer import Callback, Interrupted, NonFiniteLoss


class _LossTrace(Callback):
    """Each batch's loss, for the loss before and after an inspection."""

    def __init__(self):
        self.losses: list[float] = []
        self.data_losses: list[float] = []

    def on_batch_end(self, trainer, step, logs):
        self.losses.append(logs["loss"])
        self.data_losses.append(logs["data_loss"])


def _mean_of(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _report(monitor, config, source, columns, norms, records, nonfinite=None, inputs=None) -> InspectionReport:
    tracker = monitor.tracker
    unit = "step" if source == "steps" else "epoch"
    layers = []
    for w in monitor.layers:
        rows = [r for r in records if r["layer_index"] == w.index]
        layers.append(
            LayerReport(
                index=w.index,
                name=w.name,
                activation=w.activation,
                grad_norm=norms[w.index],
                flag_info=[FlagInfo.of(f, tracker.total, unit) for f in tracker.flags(w.index)],
                weight_norm=rows[-1]["weight_norm"] if rows else None,
                update_ratio=_mean_of([r["update_ratio"] for r in rows]),
                dead_fraction=_mean_of([r["dead_fraction"] for r in rows]),
                saturated_fraction=_mean_of([r["saturated_fraction"] for r in rows]),
            )
        )
    return InspectionReport(
        source=source,
        unit=unit,
        steps=columns,
        layers=layers,
        advice=[a.to_dict() for a in advise(config.advice_subject(), tracker.raised(), monitor.layers, inputs)],
        nonfinite=nonfinite,
        noise_scale=_noise_scale(records),
    )


def _noise_scale(records: list[dict]) -> NoiseScale:
    """The gradient noise scale over the records: the steps' estimates summed, then divided (``noise.py``)."""
    steps = noise.by_step(records)
    traces, signals = [t for _, _, t, _ in steps], [s for _, _, _, s in steps]
    return NoiseScale(
        b_simple=noise.b_simple(traces, signals), trace=sum(traces), signal=sum(signals), records=len(steps)
    )


def inspect_config(config, steps: int | None = None, every: int | None = None) -> InspectionReport:
    """Train from the config's initial weights for ``steps`` steps (default one epoch) and diagnose.

    The run is built as ``dnn train`` builds it (same data, order, seed and
    monitor), so a training of the same steps raises the same flags.
    """
    from dnncli.experiment.prepare import build_trainer, prepare_data

    model = config.build_model()
    loss = config.build_loss()
    data = prepare_data(config, model, loss)
    trainer = build_trainer(config, model, loss, len(data.x_train), data.sample_weight)
    cfg = dict(config["monitor"])
    if every is not None:
        cfg["every"] = every
    monitor = GradientMonitor(model, cfg, loss)
    trace = _LossTrace()
    per_epoch = math.ceil(len(data.x_train) / trainer.batch_size)
    steps = per_epoch if steps is None else steps
    nonfinite = None
    try:
        with np.errstate(all="ignore"):
            trainer.fit(
                data.x_train,
                data.y_train,
                epochs=math.ceil(steps / per_epoch),
                callbacks=[monitor, trace, StopAfter(steps)],
                prepared=True,
            )
    except Interrupted:
        pass
    except NonFiniteLoss as err:
        monitor.stopped(err)
        where = "" if err.layer is None else f" in layer {err.layer} ({model.layers[err.layer].name})"
        message = f"non-finite {err.stage}{where} at step {err.step + 1}"
        nonfinite = NonFinite(stage=err.stage, layer=err.layer, step=err.step + 1, message=message)
    records = monitor.take_records()
    recorded = sorted({r["step"] for r in records})
    norms = {w.index: [r["grad_norm"] for r in records if r["layer_index"] == w.index] for w in monitor.layers}
    inputs = DataStats.of(config["data"].get("scale", "none"), loss, data.x_train, data.y_train)
    report = _report(monitor, config, "steps", recorded, norms, records, nonfinite, inputs)
    tenth = max(1, len(trace.losses) // 10)
    # an uninformed model's loss, where the data loss is a mean of unweighted samples (weights rescale it)
    uninformed = None if data.sample_weight is not None else loss.uninformed(int(np.prod(model.output_shape)))
    span = LossSpan(
        first=_mean_of(trace.losses[:tenth]),
        final=_mean_of(trace.losses[-tenth:]),
        final_data=_mean_of(trace.data_losses[-tenth:]),
        uninformed=uninformed,
    )
    return replace(
        report,
        loss=span,
        steps_run=len(trace.losses),
        steps_planned=steps,
        skipped_batches=len(trainer.skipped),
    )


def inspect_run(run_dir) -> InspectionReport:
    """Diagnose what a run recorded: the same flags its training raised; columns are epochs."""
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.rundir import nonfinite_event, read_step_records, skipped_events

    run_dir = Path(run_dir)
    config = config_mod.load(run_dir / "config.yaml", check_paths=False)
    records = read_step_records(run_dir / "gradients.csv")
    if not records:
        raise DnnError(
            f"{run_dir}: no gradients.csv records yet (a run records after its first step); to probe its network"
            f" from the start: dnn inspect-gradients {run_dir / 'config.yaml'}"
        )
    monitor = GradientMonitor(config.build_model(), config["monitor"], config.build_loss())
    events = skipped_events(run_dir)
    stop = nonfinite_event(run_dir)
    losses = {r["step"]: r["loss"] for r in read_step_records(run_dir / "losses.csv")}
    monitor.replay(records, events + ([stop] if stop else []), losses)
    epochs = sorted({r["epoch"] for r in records})
    norms = {}
    for w in monitor.layers:
        by_epoch: dict[int, list[float]] = {}
        for r in records:
            if r["layer_index"] == w.index:
                by_epoch.setdefault(r["epoch"], []).append(r["grad_norm"])
        norms[w.index] = [_mean_of(by_epoch.get(e, [])) for e in epochs]
    nonfinite = None
    if stop:
        nonfinite = NonFinite(stage=stop["stage"], layer=stop["layer"], step=stop["step"], message=stop["detail"])
    return _report(monitor, config, "epochs", epochs, norms, records, nonfinite, _run_inputs(config))


def _run_inputs(config) -> DataStats | None:
    """The run's training data as the advice reads it; None where it cannot be read now."""
    from dnncli.experiment.prepare import prepare_data

    loss = config.build_loss()
    try:
        with np.errstate(all="ignore"):
            data = prepare_data(config, config.build_model(), loss)
    except DnnError:
        return None
    return DataStats.of(config["data"].get("scale", "none"), loss, data.x_train, data.y_train)


def gradcheck_config(config, samples: int = 4, entries: int = 20, tolerance: float = 1e-6, data=None) -> dict:
    """Central differences on the user's architecture and loss, in float64, on ``samples`` samples; ``data``: the
    config's data already prepared (in any precision: the samples are taken to float64), else it is prepared."""
    from dnncli.experiment.prepare import prepare_data

    # a nan tolerance fails everything, an infinite one passes everything: neither is a check
    tolerance = check_float(tolerance, "--tolerance", 0.0, low_open=True)

    config = config.replaced(("dtype",), "float64")
    model = config.build_model()
    loss = config.build_loss()
    data = data if data is not None else prepare_data(config, model, loss)
    x, y = data.x_train[:samples].astype(np.float64), data.y_train[:samples]
    y = y.astype(np.float64) if y.dtype.kind == "f" else y
    with threads.limited(config["training"]["threads"]):
        rows = gradcheck.check_model(model, x, y, loss, max_per_param=entries, seed=config["seed"])
    return {
        "samples": len(x),
        "tolerance": tolerance,
        "rows": [
            {
                "layer_index": r.layer_index,
                "layer": r.layer,
                "param": r.param,
                "checked": r.checked,
                "max_rel_error": r.max_rel_error,
                "max_abs_error": r.max_abs_error,
                "passed": r.passed(tolerance),
            }
            for r in rows
        ],
        "passed": all(r.passed(tolerance) for r in rows),
    }


def bench_config(config, reporter, steps: int = 50, warmup: int = 5) -> dict:
    """Time ``steps`` real training steps of the config, in parts, with ``reporter`` as the display."""
    from dnncli.diagnostics.bench import bench_trainer
    from dnncli.experiment.prepare import build_trainer, prepare_data
    from dnncli.experiment.run import run_info

    model = config.build_model()
    loss = config.build_loss()
    data = prepare_data(config, model, loss)
    trainer = build_trainer(config, model, loss, len(data.x_train), data.sample_weight)
    monitor = GradientMonitor(model, config["monitor"], loss)
    reporter.train_begin(run_info(config, data, trainer, monitor, "bench", 1, []))

    def display(done: int, total: int) -> None:  # as dnn train's display is called after each step
        reporter.batch_end(0, done, total, 0.5)

    try:
        with np.errstate(all="ignore"):
            report = bench_trainer(trainer, data.x_train, data.y_train, monitor, display, steps, warmup)
    finally:
        reporter.train_end(None)
    return {"config": config.name, **report}


def probe_steps(report: InspectionReport, config) -> int | None:
    """Steps for ``--try-advice`` on a run: enough to reach the onset of its last lasting flag and judge it (two
    growth windows past it); None (one epoch) where the run raised none."""
    onsets = [f.onset_step for layer in report.layers for f in layer.flag_info if not f.transient]
    if not onsets:
        return None
    return max(onsets) + 2 * config["monitor"]["growth_window"]
