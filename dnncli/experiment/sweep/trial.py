"""One trial, on a Ray worker: an ordinary run directory, reporting each epoch to Tune as it ends."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from dnncli.errors import DnnError
from dnncli.experiment.runfiles import read_history
from dnncli.experiment.sweep.spec import read_sweep
from dnncli.files import atomic_write_text
from dnncli.strict_json import dumps
from dnncli.train.threads import blas_threads_now


def run_trial(space: dict, sweep_file: str, out: str) -> None:
    """One trial: an ordinary run directory, reporting each epoch's history row to Tune as it ends."""
    from ray import tune

    from dnncli.experiment.run import Reporter, TrainingRun
    from dnncli.train.trainer import NonFiniteLoss

    spec = read_sweep(sweep_file)
    trial_id = tune.get_context().get_trial_id()
    repeat = int(space.get("repeat", 0))
    params = {k: v for k, v in space.items() if k != "repeat"}
    run_dir = Path(out) / "trials" / trial_id
    record = {"id": trial_id, "params": params, "repeat": repeat, "seed": spec.base["seed"] + repeat}
    # exactly the CPUs Ray gives the trial, as BLAS threads: trials side by side never wait for each other's cores
    cpus = trial_cpus()
    record["cpus"] = cpus
    record["run_dir"] = str(run_dir)
    started = time.perf_counter()
    record["started_at"] = time.time()  # when, on the clock of the trial's machine (bench/sweep_speedup.py's phases)

    class ToTune(Reporter):
        def epoch_end(self, row, layers):
            if "blas_threads" not in record:  # the count in force while training, as the trial's record says
                record["blas_threads"] = blas_threads_now()
            value = row.get(spec.metric, math.nan)
            tune.report({spec.metric: value if math.isfinite(value) else _worst(spec.mode), "epoch": row["epoch"]})

    done = run_dir / "trial.json"
    if done.exists():  # finished before the driver died, recorded, and not yet known to Tune's saved state
        previous = json.loads(done.read_text())
        tune.report({spec.metric: previous["metric"] if previous["metric"] is not None else _worst(spec.mode)})
        return
    try:
        config = spec.base.with_overrides(spec.overrides(params, repeat))
        if (run_dir / "model.npz").exists():  # trained before the driver died, not yet recorded
            status, message, history = "completed", "", read_history(run_dir)
        else:
            if (run_dir / "checkpoint.npz").exists():  # a sweep resumed after its driver died: continue the run
                run = TrainingRun.open(run_dir, reporter=ToTune(), threads=cpus)
            else:
                run = TrainingRun.create(config, out=run_dir, reporter=ToTune(), threads=cpus)
            result = run.train()
            status = {"completed": "completed", "early_stopped": "completed"}.get(result.status, "failed")
            message, history = result.message, result.history
        values = [as_float(r.get(spec.metric)) for r in history]
        best = best_index(values, spec.mode)
        record |= {
            "status": status,
            "reason": "" if status == "completed" else message.split(". ")[0],
            "metric": values[best] if best is not None else math.nan,
            "best_epoch": best + 1 if best is not None else None,
            "epochs": len(history),
        }
    except (DnnError, NonFiniteLoss, ValueError, FloatingPointError) as err:
        record |= {"status": "failed", "reason": str(err).split("\n")[0], "metric": math.nan, "epochs": 0}
    record["seconds"] = time.perf_counter() - started
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "trial.json", dumps(record))
    if record["status"] == "failed" and not record.get("epochs"):
        tune.report({spec.metric: _worst(spec.mode), "epoch": 0})  # Tune wants the metric once from every trial


def trial_cpus() -> int:
    """The CPUs Ray gave this trial (``resources_per_trial``), at least 1."""
    import ray

    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    except Exception:  # outside a Ray worker (a trial run by hand): one CPU, as a trial gets by default
        cpus = 1.0
    return max(1, int(cpus))


def as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _worst(mode: str) -> float:
    return 1e300 if mode == "min" else -1e300


def best_index(values: list[float], mode: str) -> int | None:
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return None
    return (min(finite) if mode == "min" else max(finite))[1]
