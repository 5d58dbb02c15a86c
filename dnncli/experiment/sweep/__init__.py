"""``dnn sweep``: hyperparameter search on Ray Tune, on this machine by default or on a cluster by address.

A sweep file names a base config, the metric, the method (grid, random, or tpe with Optuna's sampler), the
parameters (dotted keys as ``--set`` takes them, ``*`` included) and, optionally, ASHA early stopping. Every
trial is an ordinary run directory under ``DIR/trials/``, trained by the same code as ``dnn train``, that
reports each epoch to the scheduler as it ends. Every override is checked against the base config before any
trial starts. A trial that fails (NaN, an exception) is recorded with its one-line reason and never stops
the sweep. ``DIR/results.csv`` has a row per trial, ``DIR/best.yaml`` the best trial's config.
"""

from dnncli.experiment.sweep.driver import ray_cpus, sweep
from dnncli.experiment.sweep.results import collect
from dnncli.experiment.sweep.spec import METHODS, SweepSpec, grid, read_sweep
from dnncli.experiment.sweep.trial import run_trial

__all__ = ["METHODS", "SweepSpec", "collect", "grid", "ray_cpus", "read_sweep", "run_trial", "sweep"]
