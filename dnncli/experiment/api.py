"""The Python API for notebooks and scripts: build a model from a spec or a YAML file.

>>> from dnncli.experiment.api import build_model
>>> build_model({"input_shape": [3], "layers": [{"type": "dense", "units": 4, "activation": "relu"},
...     {"type": "dense", "units": 2, "activation": "softmax"}]}).count_params()
26
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dnncli.errors import DnnError, suggest
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
        spec = _read_yaml(spec)
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


def _read_yaml(path):
    import yaml

    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise DnnError(f"{path}: no such file.") from None
    except yaml.YAMLError as err:
        raise DnnError(f"{path}: not valid YAML ({err}).".replace("\n", " ")) from None
