"""``dnn sweep``: hyperparameter search on Ray Tune, on this machine by default or on a cluster by address.

A sweep file names a base config, the metric, the method (grid, random, or tpe with Optuna's sampler), the
parameters (dotted keys as ``--set`` takes them, ``*`` included) and, optionally, ASHA early stopping. Every
trial is an ordinary run directory under ``DIR/trials/``, trained by the same code as ``dnn train``, that
reports each epoch to the scheduler as it ends. Every override is checked against the base config before any
trial starts. A trial that fails (NaN, an exception) is recorded with its one-line reason and never stops
the sweep. ``DIR/results.csv`` has a row per trial, ``DIR/best.yaml`` the best trial's config.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import yaml

from dnncli.errors import DnnError, check_choice, check_int, suggest
from dnncli.files import atomic_write_text
from dnncli.train import metrics as metrics_mod

METHODS = ("grid", "random", "tpe")
SWEEP_KEYS = ("config", "metric", "mode", "method", "trials", "repeats", "seed", "parameters", "early_stopping")
RESULT_FIELDS = ("id", "status", "reason", "metric", "best_epoch", "epochs", "seconds", "repeat", "seed", "run_dir")
INSTALL = "pip install '.[sweep]' in a checkout of dnncli (Ray Tune and Optuna)"


class SweepSpec:
    """A validated sweep file."""

    def __init__(self, path: Path, raw: dict):
        from dnncli.experiment.config import load

        self.path = path
        self.raw = raw
        for key in raw:
            if key not in SWEEP_KEYS:
                raise DnnError(f"{path}: sweep has no key {key!r}.{suggest(key, SWEEP_KEYS)}")
        if "config" not in raw or "parameters" not in raw:
            raise DnnError(f"{path}: a sweep needs 'config' (the base config) and 'parameters'.")
        self.config_path = (path.parent / str(raw["config"])).resolve()
        self.base = load(self.config_path)
        self.metric = raw.get("metric", "val_loss")
        if not isinstance(self.metric, str):
            raise DnnError(f"{path}: metric must be a history column name. Received: {self.metric!r}")
        self.mode = check_choice(raw.get("mode", metrics_mod.direction(self.metric)), "mode", ("min", "max"))
        self.method = check_choice(raw.get("method", "grid"), "method", METHODS)
        self.trials = check_int(raw.get("trials", 10), "trials")
        self.repeats = check_int(raw.get("repeats", 1), "repeats")
        self.seed = check_int(raw.get("seed", 0), "seed", minimum=0)
        self.parameters = self._parameters(raw["parameters"])
        self.early_stopping = self._early_stopping(raw.get("early_stopping"))
        self._check_metric()
        self._check_overrides()

    def _parameters(self, spec) -> dict:
        if not isinstance(spec, dict) or not spec:
            raise DnnError(f"{self.path}: parameters must map dotted keys to {{values: [...]}} or {{min, max}}.")
        out = {}
        for key, p in spec.items():
            where = f"{self.path}: parameters.{key}"
            if not isinstance(p, dict) or not (set(p) <= {"values", "min", "max", "log"}):
                raise DnnError(f"{where}: give {{values: [...]}} or {{min: a, max: b, log: true|false}}.")
            if "values" in p:
                if not isinstance(p["values"], list) or not p["values"]:
                    raise DnnError(f"{where}.values must be a non-empty list.")
                out[key] = {"values": p["values"]}
                continue
            if "min" not in p or "max" not in p:
                raise DnnError(f"{where}: a range needs min and max.")
            low, high, log = p["min"], p["max"], p.get("log", False)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
                raise DnnError(f"{where}: min must be a number below max. Received: min={low!r}, max={high!r}")
            if log and low <= 0:
                raise DnnError(f"{where}: a log range needs min > 0. Received: min={low!r}")
            if self.method == "grid":
                raise DnnError(f"{where}: method grid takes values; ranges need method random or tpe.")
            integer = isinstance(low, int) and isinstance(high, int)
            out[key] = {"min": low, "max": high, "log": bool(log), "int": integer}
        return out

    def _early_stopping(self, spec) -> dict | None:
        if spec is None:
            return None
        if not isinstance(spec, dict) or spec.get("method", "asha") != "asha":
            raise DnnError(f"{self.path}: early_stopping must be {{method: asha, grace_epochs: N}}. Received: {spec!r}")
        unknown = set(spec) - {"method", "grace_epochs", "reduction_factor"}
        if unknown:
            raise DnnError(f"{self.path}: early_stopping has no key {sorted(unknown)[0]!r}.")
        return {
            "grace_epochs": check_int(spec.get("grace_epochs", 1), "early_stopping.grace_epochs"),
            "reduction_factor": check_int(spec.get("reduction_factor", 3), "early_stopping.reduction_factor", 2),
        }

    def _check_metric(self) -> None:
        from dnncli.experiment.config import VALIDATION_FILES

        names = ["loss", "data_loss", "penalty", *self.base["metrics"]]
        validation_file = any(self.base["data"].get(k) is not None for k in VALIDATION_FILES)
        if self.base["training"]["validation_split"] > 0 or validation_file:
            names += ["val_loss", *[f"val_{m}" for m in self.base["metrics"]]]
        if self.metric not in names:
            raise DnnError(
                f"{self.path}: metric {self.metric!r} is not logged by {self.config_path.name}."
                f" Logged: {', '.join(names)}."
                + (
                    " Set training.validation_split (or data.validation_path) for val_ values."
                    if self.metric.startswith("val_")
                    else ""
                )
            )

    def _check_overrides(self) -> None:
        """Every value (grid) or both ends of every range, applied to the base config, before any trial."""
        for key, p in self.parameters.items():
            for value in p["values"] if "values" in p else (p["min"], p["max"]):
                try:
                    self.base.with_overrides([f"{key}={_yaml(value)}"])
                except DnnError as err:
                    raise DnnError(f"{self.path}: parameters.{key}: {err.message}") from None

    def overrides(self, params: dict, repeat: int) -> list[str]:
        out = [f"{k}={_yaml(v)}" for k, v in params.items()]
        return out + [f"seed={self.base['seed'] + repeat}"]


def _yaml(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def read_sweep(path) -> SweepSpec:
    from dnncli.experiment.config import read_config_file

    path = Path(path)
    raw, _ = read_config_file(path)  # the same limits and errors as a config
    return SweepSpec(path, raw)


def grid(spec: SweepSpec) -> list[dict]:
    """Every combination of the parameters' values, in the file's order."""
    keys = list(spec.parameters)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(spec.parameters[k]["values"] for k in keys))]


# the trial, on a Ray worker ---------------------------------------------------------------------------------------
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
    # each trial's share of the cores: Ray sets OMP_NUM_THREADS to its CPUs, which OpenBLAS follows
    record["blas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    record["run_dir"] = str(run_dir)
    started = time.perf_counter()

    class ToTune(Reporter):
        def epoch_end(self, row, layers):
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
            status, message, history = "completed", "", _history_rows(run_dir)
        else:
            if (run_dir / "checkpoint.npz").exists():  # a sweep resumed after its driver died: continue the run
                run = TrainingRun.open(run_dir, reporter=ToTune())
            else:
                run = TrainingRun.create(config, out=run_dir, reporter=ToTune())
            result = run.train()
            status = {"completed": "completed", "early_stopped": "completed"}.get(result.status, "failed")
            message, history = result.message, result.history
        values = [_float(r.get(spec.metric)) for r in history]
        best = _best_index(values, spec.mode)
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
    atomic_write_text(run_dir / "trial.json", json.dumps(_strict(record)))
    if record["status"] == "failed" and not record.get("epochs"):
        tune.report({spec.metric: _worst(spec.mode), "epoch": 0})  # Tune wants the metric once from every trial


def _history_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _worst(mode: str) -> float:
    return 1e300 if mode == "min" else -1e300


def _best_index(values: list[float], mode: str) -> int | None:
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return None
    return (min(finite) if mode == "min" else max(finite))[1]


def _strict(value):
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _strict(value.item())
    return value


# the driver --------------------------------------------------------------------------------------------------------
def _ray():
    # Ray's own console output gives way to ours: no banners or progress tables (verbose=0 below)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    try:
        import ray
        from ray import tune
    except ImportError:
        raise DnnError(f"dnn sweep needs Ray Tune: {INSTALL}.") from None
    return ray, tune


def search_space(spec: SweepSpec, tune) -> dict:
    space = {}
    for key, p in spec.parameters.items():
        if "values" in p:
            space[key] = tune.grid_search(p["values"]) if spec.method == "grid" else tune.choice(p["values"])
        elif p["int"]:
            high = p["max"] + 1  # randint excludes its upper bound; a sweep file's max is included
            space[key] = tune.lograndint(p["min"], high) if p["log"] else tune.randint(p["min"], high)
        else:
            space[key] = tune.loguniform(p["min"], p["max"]) if p["log"] else tune.uniform(p["min"], p["max"])
    if spec.method == "grid":
        space["repeat"] = tune.grid_search(list(range(spec.repeats)))
    return space


def sweep(
    sweep_file,
    out,
    workers: int | None = None,
    address: str | None = None,
    view=None,
    resume: bool = False,
) -> dict:
    """Run (or, with ``resume``, finish) a sweep; return its results as ``dnn sweep --json`` prints them."""
    ray, tune = _ray()
    out = Path(out).resolve()
    if resume:
        if not (out / "sweep.yaml").exists():
            raise DnnError(f"--resume {out}: not a sweep directory (no sweep.yaml).")
        sweep_file = out / "sweep.yaml"
    spec = read_sweep(sweep_file)
    if not resume:
        if out.exists() and any(out.iterdir()):
            raise DnnError(f"--out {out}: not empty; choose another directory, or --resume it.")
        out.mkdir(parents=True, exist_ok=True)
        # the sweep as the directory keeps it: its base config by absolute path, so --resume finds it from anywhere
        atomic_write_text(
            out / "sweep.yaml", yaml.safe_dump(spec.raw | {"config": str(spec.config_path)}, sort_keys=False)
        )
    workers = workers or os.cpu_count() or 1
    started_here = _start_ray(ray, out, workers, address)
    try:
        tuner = _tuner(spec, tune, out, workers, view, resume)
        # Tune prints trial summaries of its own (on a restore, whatever verbose says): ours replace them
        with contextlib.redirect_stdout(io.StringIO()):
            grid_results = tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    return collect(spec, out, grid_results)


def _start_ray(ray, out: Path, workers: int, address: str | None) -> bool:
    """Join ``address``, or start Ray on this machine with ``workers`` CPUs; quiet, its files under ``out``."""
    import logging

    if ray.is_initialized():
        return False  # a Ray session already open in this process (the tests share one)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    kwargs = {"log_to_driver": False, "logging_level": logging.ERROR, "include_dashboard": False}
    if address is not None:
        ray.init(address=address, **kwargs)
    else:
        # sockets live in the temporary dir, whose path must stay short: under DIR if it is short, else /tmp
        temp = out / ".ray"
        if len(str(temp)) > 60:
            import tempfile

            temp = Path(tempfile.mkdtemp(prefix="dnn-ray-"))
        ray.init(num_cpus=os.cpu_count() or workers, _temp_dir=str(temp), **kwargs)
    return True


def _tuner(spec: SweepSpec, tune, out: Path, workers: int, view, resume: bool):
    from ray.tune.schedulers import ASHAScheduler

    cpus = max(1, int(ray_cpus() // workers))  # never more threads than cores: workers x cpus <= cores
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, sweep_file=str(out / "sweep.yaml"), out=str(out)), {"cpu": cpus}
    )
    callbacks = [_events(tune, view, spec)] if view is not None else []
    run_config = tune.RunConfig(storage_path=str(out), name="tune", verbose=0, callbacks=callbacks)
    if resume and tune.Tuner.can_restore(str(out / "tune")):
        return tune.Tuner.restore(str(out / "tune"), trainable, resume_errored=False, restart_errored=False)
    search_alg = None
    if spec.method == "tpe":
        import optuna
        from ray.tune.search import Repeater
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # its study messages give way to ours

        search_alg = OptunaSearch(metric=spec.metric, mode=spec.mode, seed=spec.seed)
        if spec.repeats > 1:
            search_alg = Repeater(search_alg, repeat=spec.repeats, set_index=False)
    scheduler = None
    if spec.early_stopping is not None:
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=spec.base["training"]["epochs"] + 1,  # a trial at its last epoch ends itself, with its record
            grace_period=spec.early_stopping["grace_epochs"],
            reduction_factor=spec.early_stopping["reduction_factor"],
        )
    space = search_space(spec, tune)
    if spec.method == "random" and spec.repeats > 1:
        space["repeat"] = tune.grid_search(list(range(spec.repeats)))  # each sample, with each seed
    samples = 1 if spec.method == "grid" else spec.trials
    tune_config = tune.TuneConfig(
        metric=spec.metric,
        mode=spec.mode,
        num_samples=samples * (spec.repeats if spec.method == "tpe" else 1),
        search_alg=search_alg,
        scheduler=scheduler,
        max_concurrent_trials=workers,
        reuse_actors=True,  # a trial's process serves the next: no new process and imports per trial
    )
    if spec.method != "grid":
        np.random.seed(spec.seed)  # Tune's random sampling draws from NumPy's global generator
    return tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config)


def _events(tune, view, spec):
    """A Tune callback handing each trial's epochs and end to ``view``."""
    from dnncli.experiment.sweep_events import VIEW, TrialEvents

    VIEW["view"], VIEW["metric"] = view, spec.metric
    return TrialEvents()


def ray_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)


def collect(spec: SweepSpec, out: Path, grid_results=None) -> dict:
    """Every trial's record (Tune's word for those stopped early or lost); writes results.csv and best.yaml."""
    trials = []
    seen = set()
    for record_path in sorted((out / "trials").glob("*/trial.json")):
        record = json.loads(record_path.read_text())
        trials.append(record)
        seen.add(record["id"])
    if grid_results is not None:
        for result in grid_results:
            metrics = result.metrics or {}
            trial_id = metrics.get("trial_id") or (Path(result.path).name if result.path else None)
            if trial_id is None or trial_id in seen:
                continue
            seen.add(trial_id)
            config = dict(result.config or {})
            repeat = int(config.pop("repeat", 0))
            status = "failed" if result.error else "pruned"
            reason = str(result.error).strip().split("\n")[-1] if result.error else "stopped early by ASHA"
            run_dir = out / "trials" / str(trial_id)
            history = _history_values(run_dir, spec.metric)
            if history:  # stopped by the scheduler: its best so far, from its own run directory
                best = _best_index(history, spec.mode)
                metrics = metrics | {spec.metric: history[best] if best is not None else None, "epoch": len(history)}
            trials.append(
                {
                    "id": trial_id,
                    "params": config,
                    "repeat": repeat,
                    "seed": spec.base["seed"] + repeat,
                    "status": status,
                    "reason": reason,
                    "metric": metrics.get(spec.metric),
                    "best_epoch": None,
                    "epochs": metrics.get("epoch", 0),
                    "seconds": metrics.get("time_total_s"),
                    "run_dir": str(run_dir),
                }
            )
    return _summarize(spec, out, trials)


def _history_values(run_dir: Path, metric: str) -> list[float]:
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [float(r[metric]) if r.get(metric) else math.nan for r in csv.DictReader(f)]


def _summarize(spec: SweepSpec, out: Path, trials: list[dict]) -> dict:
    keys = list(spec.parameters)
    groups: dict[str, list[dict]] = {}
    for t in trials:
        groups.setdefault(json.dumps([t["params"].get(k) for k in keys]), []).append(t)
    ok = [t for t in trials if t["status"] == "completed" and t["metric"] is not None]
    best = None
    if ok:
        pick = min if spec.mode == "min" else max
        best = pick(ok, key=lambda t: t["metric"])
    for members in groups.values():
        values = [t["metric"] for t in members if t["status"] == "completed" and t["metric"] is not None]
        mean = float(np.mean(values)) if len(values) > 1 else None  # over repeats (seeds) of one configuration
        spread = float(np.std(values)) if len(values) > 1 else None
        for t in members:
            t["mean"], t["spread"] = mean, spread
    _write_results(out, keys, trials)
    report = {
        "metric": spec.metric,
        "mode": spec.mode,
        "best": None,
        "trials": [
            {k: t.get(k) for k in ("id", "params", "status", "reason", "metric", "epochs", "run_dir", "mean", "spread")}
            for t in trials
        ],
    }
    if best is not None:
        report["best"] = {"params": best["params"], "metric": best["metric"], "run_dir": best["run_dir"]}
        config = Path(best["run_dir"]) / "config.yaml"
        if config.exists():
            atomic_write_text(out / "best.yaml", config.read_text())
    return report


def _write_results(out: Path, keys: list[str], trials: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*keys, *RESULT_FIELDS])
    for t in trials:
        row = [
            json.dumps(t["params"].get(k)) if isinstance(t["params"].get(k), (dict, list)) else t["params"].get(k)
            for k in keys
        ]
        writer.writerow(row + ["" if t.get(f) is None else t.get(f) for f in RESULT_FIELDS])
    atomic_write_text(out / "results.csv", buf.getvalue())
