"""The driver: Ray started (or joined), the search space, the Tuner, and the results collected at the end."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import yaml

from dnncli.errors import DnnError
from dnncli.experiment.modeline import with_modeline
from dnncli.experiment.sweep.cluster import join
from dnncli.experiment.sweep.results import SweepReport, collect
from dnncli.experiment.sweep.spec import SweepSpec, read_sweep
from dnncli.experiment.sweep.trial import run_trial
from dnncli.files import atomic_write_text
from dnncli.train.threads import usable_cpus

INSTALL = "pip install '.[sweep]' in a checkout of dnncli (Ray Tune and Optuna)"


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
) -> SweepReport:
    """Run (or, with ``resume``, finish) a sweep; its report's ``to_dict()`` is what ``dnn sweep --json`` prints."""
    ray, tune = _ray()
    out = Path(out).resolve()
    if resume:
        if not (out / "sweep.yaml").exists():
            raise DnnError(f"--resume {out}: not a sweep directory (no sweep.yaml).")
        sweep_file = out / "sweep.yaml"
    spec = read_sweep(sweep_file)
    if not resume and out.exists() and any(out.iterdir()):
        raise DnnError(f"--out {out}: not empty; choose another directory, or --resume it.")
    started_here = _start_ray(ray, out, address)  # a cluster that cannot be joined leaves no directory behind
    try:
        if not resume:
            out.mkdir(parents=True, exist_ok=True)
            # the sweep as the directory keeps it: its base config by absolute path, so --resume finds it anywhere
            kept = yaml.safe_dump(spec.raw | {"config": str(spec.config_path)}, sort_keys=False)
            atomic_write_text(out / "sweep.yaml", with_modeline(kept, at=out / "sweep.yaml", sweep=True))
        # as many trials at once as the cluster has CPUs for; each runs as many BLAS threads as its CPUs (trial.py)
        workers = workers or max(1, int(ray_cpus() // spec.cpus_per_trial))
        tuner = _tuner(spec, tune, out, workers, view, resume)
        # Tune prints trial summaries of its own (on a restore, whatever verbose says): ours replace them
        with contextlib.redirect_stdout(io.StringIO()):
            grid_results = tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    return collect(spec, out, grid_results)


def _start_ray(ray, out: Path, address: str | None) -> bool:
    """Join ``address``, or start Ray on this machine with the CPUs this process may use; quiet, its files under
    ``out``."""
    import logging

    if ray.is_initialized():
        return False  # a Ray session already open in this process (the tests share one)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    kwargs = {"log_to_driver": False, "logging_level": logging.ERROR, "include_dashboard": False}
    if address is not None:
        join(ray, address, **kwargs)  # in the head's authentication mode; a failure is one line
    else:
        # sockets live in the temporary dir, whose path must stay short: under DIR if it is short, else /tmp
        temp = out / ".ray"
        if len(str(temp)) > 60:
            import tempfile

            temp = Path(tempfile.mkdtemp(prefix="dnn-ray-"))
        ray.init(num_cpus=usable_cpus(), _temp_dir=str(temp), **kwargs)
    return True


def _tuner(spec: SweepSpec, tune, out: Path, workers: int, view, resume: bool):
    from ray.tune.schedulers import ASHAScheduler

    cpus = spec.cpus_per_trial
    if cpus > ray_cpus():
        raise DnnError(
            f"{spec.path}: resources_per_trial asks {cpus} CPUs a trial, and the cluster has {ray_cpus():g}; ask"
            " fewer (no trial could start)."
        )
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
    from dnncli.experiment.sweep.events import VIEW, TrialEvents

    VIEW["view"], VIEW["metric"] = view, spec.metric
    return TrialEvents()


def ray_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)
