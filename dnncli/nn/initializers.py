"""Weight initializers with Keras 3's formulas.

Glorot, He and LeCun are ``VarianceScaling`` with (scale, mode, distribution):

=============  =====  =======  =================
glorot_normal  1      fan_avg  truncated normal
glorot_uniform 1      fan_avg  uniform
he_normal      2      fan_in   truncated normal
he_uniform     2      fan_in   uniform
lecun_normal   1      fan_in   truncated normal
lecun_uniform  1      fan_in   uniform
=============  =====  =======  =================

The truncated normal redraws values beyond two standard deviations; its
stddev is divided by 0.87962566103423978, the stddev of a unit normal truncated
at +-2, so that the variance is ``scale / fan``.
"""

from __future__ import annotations

import math

import numpy as np

from dnncli.errors import check_choice, check_float, check_optional_seed
from dnncli.registry import Registry

TRUNCATED_STDDEV = 0.87962566103423978


def compute_fans(shape: tuple) -> tuple[float, float]:
    """Keras's ``compute_fans``: (fan_in, fan_out) of a weight shape."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def truncated_normal(rng: np.random.Generator, shape, mean: float, stddev: float) -> np.ndarray:
    """Normal samples, those outside ``mean +- 2 stddev`` redrawn (float64)."""
    values = rng.standard_normal(shape)
    bad = np.abs(values) > 2.0
    while bad.any():
        values[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(values) > 2.0
    return values * stddev + mean


class Initializer:
    """Base class: ``initializer(shape, dtype, rng)`` returns a new array.

    An explicit ``seed`` makes the initializer use its own generator, so the
    result does not depend on the model's seed or the layer's position.
    """

    name = "initializer"
    seed = None

    def __call__(self, shape, dtype="float32", rng: np.random.Generator | None = None) -> np.ndarray:
        if self.seed is not None or rng is None:
            rng = np.random.default_rng(self.seed)
        return np.asarray(self.sample(tuple(shape), rng), dtype=dtype)

    def sample(self, shape: tuple, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}


class Zeros(Initializer):
    name = "zeros"

    def sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    name = "ones"

    def sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    name = "constant"

    def __init__(self, value: float = 0.0):
        self.value = check_float(value, "constant.value")

    def sample(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"name": self.name, "value": self.value}


class RandomNormal(Initializer):
    name = "random_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        self.mean = check_float(mean, "random_normal.mean")
        self.stddev = check_float(stddev, "random_normal.stddev", 0.0, None)
        self.seed = check_optional_seed(seed, "random_normal.seed")

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"name": self.name, "mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    name = "random_uniform"

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        self.minval = check_float(minval, "random_uniform.minval")
        self.maxval = check_float(maxval, "random_uniform.maxval", self.minval, None)
        self.seed = check_optional_seed(seed, "random_uniform.seed")

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"name": self.name, "minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(Initializer):
    name = "truncated_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        self.mean = check_float(mean, "truncated_normal.mean")
        self.stddev = check_float(stddev, "truncated_normal.stddev", 0.0, None)
        self.seed = check_optional_seed(seed, "truncated_normal.seed")

    def sample(self, shape, rng):
        return truncated_normal(rng, shape, self.mean, self.stddev)

    def get_config(self):
        return {"name": self.name, "mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Samples with variance ``scale / fan``; the family behind Glorot, He and LeCun."""

    name = "variance_scaling"

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ):
        self.scale = check_float(scale, "variance_scaling.scale", 0.0, None, low_open=True)
        self.mode = check_choice(mode, "variance_scaling.mode", ("fan_in", "fan_out", "fan_avg"))
        if distribution == "normal":  # Keras treats "normal" as truncated
            distribution = "truncated_normal"
        self.distribution = check_choice(
            distribution,
            "variance_scaling.distribution",
            ("truncated_normal", "untruncated_normal", "uniform"),
        )
        self.seed = check_optional_seed(seed, "variance_scaling.seed")

    def sample(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            return truncated_normal(rng, shape, 0.0, math.sqrt(variance) / TRUNCATED_STDDEV)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), shape)
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, shape)

    def get_config(self):
        return {
            "name": self.name,
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


def _variant(name: str, scale: float, mode: str, distribution: str) -> type:
    def __init__(self, seed: int | None = None):
        VarianceScaling.__init__(self, scale, mode, distribution, check_optional_seed(seed, f"{name}.seed"))

    def get_config(self):
        return {"name": name, "seed": self.seed}

    doc = f"VarianceScaling(scale={scale}, mode={mode!r}, distribution={distribution!r})."
    return type(
        name, (VarianceScaling,), {"name": name, "__init__": __init__, "get_config": get_config, "__doc__": doc}
    )


GlorotNormal = _variant("glorot_normal", 1.0, "fan_avg", "truncated_normal")
GlorotUniform = _variant("glorot_uniform", 1.0, "fan_avg", "uniform")
HeNormal = _variant("he_normal", 2.0, "fan_in", "truncated_normal")
HeUniform = _variant("he_uniform", 2.0, "fan_in", "uniform")
LecunNormal = _variant("lecun_normal", 1.0, "fan_in", "truncated_normal")
LecunUniform = _variant("lecun_uniform", 1.0, "fan_in", "uniform")

INITIALIZERS = {
    cls.name: cls
    for cls in (
        Zeros,
        Ones,
        Constant,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        GlorotNormal,
        GlorotUniform,
        HeNormal,
        HeUniform,
        LecunNormal,
        LecunUniform,
    )
}
REGISTRY = Registry("initializer", INITIALIZERS)
REGISTRY.base = Initializer


def get(spec, key=()) -> Initializer:
    """Return the initializer for a name or ``{name: ..., args}`` mapping."""
    return REGISTRY.get(spec, key)
