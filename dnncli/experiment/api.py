"""The Python API for notebooks and scripts: build a model, train from a config, evaluate, predict.

>>> from dnncli.experiment.api import build_model
>>> build_model({"input_shape": [3], "layers": [{"type": "dense", "units": 4, "activation": "relu"},
...     {"type": "dense", "units": 2, "activation": "softmax"}]}).count_params()
26
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from dnncli.errors import DnnError, suggest
from dnncli.experiment.config import read_config_file
from dnncli.nn.model import Sequential

MODEL_KEYS = ("input_shape", "layers", "dtype", "seed")


def build_model(spec, dtype: str | None = None, seed: int | None = None) -> Sequential:
    """Build a model from the ``model:`` part of a config.

    Parameters
    ----------
    spec : mapping or path
        ``{input_shape: [...], layers: [...]}`` (optionally ``dtype``, ``seed``),
        or a YAML file holding it, or holding a whole config with a ``model:`` key.
    dtype : str or None, default=None
        Overrides ``spec["dtype"]``; float32 when neither is given.
    seed : int or None, default=None
        Overrides ``spec["seed"]``.
    """
    if isinstance(spec, (str, os.PathLike)):
        # the one YAML reader: 1.2's floats (1e-3), the size guards, duplicate keys refused
        spec = read_config_file(spec)[0]
        if isinstance(spec, Mapping) and "model" in spec:
            outer = {k: spec[k] for k in ("dtype", "seed") if k in spec}
            spec = dict(spec["model"], **{k: v for k, v in outer.items() if k not in spec["model"]})
    if not isinstance(spec, Mapping):
        raise DnnError(f"model must be a mapping with input_shape and layers. Received: {spec!r}")
    for key in spec:
        if key not in MODEL_KEYS:
            raise DnnError(f"model has no key {key!r}.{suggest(key, MODEL_KEYS)}", (key,))
    for key in ("input_shape", "layers"):
        if key not in spec:
            raise DnnError(f"model needs {key!r}.", (key,))
    return Sequential(
        spec["layers"],
        spec["input_shape"],
        dtype=dtype or spec.get("dtype", "float32"),
        seed=seed if seed is not None else spec.get("seed"),
    )


def train(config, overrides: list[str] | None = None, out=None, epochs: int | None = None, reporter=None):
    """Train from a config file (or a loaded ``Config``) as ``dnn train`` does; returns the ``RunResult``.

    >>> result = train("configs/quickstart.yaml", ["training.epochs=3"], out="runs/try")  # doctest: +SKIP
    >>> result.test["accuracy"], result.run_dir  # doctest: +SKIP
    """
    from dnncli.experiment.config import Config, load
    from dnncli.experiment.run import TrainingRun

    cfg = config if isinstance(config, Config) else load(config, overrides or [])
    if isinstance(config, Config) and overrides:
        cfg = cfg.with_overrides(overrides)
    return TrainingRun.create(cfg, out=out, epochs=epochs, reporter=reporter).train()


def evaluate(run_dir, data=None) -> dict:
    """Loss, metrics and (for classification) the confusion matrix, as ``dnn eval --json`` gives them."""
    from dnncli.experiment.evaluate import evaluate_run

    return evaluate_run(run_dir, data)


def predict(run_dir, x) -> np.ndarray:
    """A finished run's predictions for raw inputs ``x``: probabilities for a classifier, values in the data's units.

    The run's input scaling is applied, and for regression its target scaling undone, as by ``dnn predict``.
    """
    from dnncli.experiment.evaluate import load_run
    from dnncli.experiment.prepare import model_inputs

    _, model, loss, prep = load_run(run_dir)
    out = loss.probabilities(model.predict(model_inputs(model, prep, np.asarray(x), "x")))
    if not loss.classifies and prep.targets is not None:
        out = prep.targets.inverse(out.astype(np.float64))
    return out
