"""Preprocessing fitted on the training split: input and target scaling, and what a run saves of it."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass

import numpy as np

from dnncli.data.table import TableEncoder
from dnncli.errors import DnnError


def check_finite(x: np.ndarray, where: str) -> None:
    """Raise if ``x`` holds NaN or infinity, naming the first sample and feature."""
    if np.issubdtype(x.dtype, np.floating) and x.size:
        bad = ~np.isfinite(x.reshape(len(x), -1))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            value = x.reshape(len(x), -1)[row, col]
            raise DnnError(f"{where}: sample {row}, feature {col} is {value}; inputs must be finite.")


@dataclass(frozen=True)
class Scaling:
    """How features are scaled: ``none``, ``standardize``, ``minmax``, or divided by a fixed number (255 for images)."""

    method: str  # none | standardize | minmax | divide
    divisor: float = 1.0

    METHODS = ("none", "standardize", "minmax")

    @classmethod
    def parse(cls, value) -> Scaling:
        """From a config value: one of the method names, or a positive number to divide by."""
        if isinstance(value, Scaling):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls("divide", float(value))
        return cls(str(value))

    @property
    def config(self):
        """As a config writes it."""
        return self.divisor if self.method == "divide" else self.method


class Preprocessor:
    """``x' = (x - offset) / scale`` per feature, fitted on the training split."""

    def __init__(self, kind, offset: np.ndarray, scale: np.ndarray):
        self.kind = Scaling.parse(kind)
        self.offset, self.scale = offset, scale

    @classmethod
    def fit(cls, kind, x: np.ndarray) -> Preprocessor:
        kind = Scaling.parse(kind)
        shape = x.shape[1:]
        if kind.method == "none":
            return cls(kind, np.zeros(shape), np.ones(shape))
        if kind.method == "divide":
            return cls(kind, np.zeros(shape), np.full(shape, kind.divisor))
        if kind.method == "standardize":
            offset, scale = _mean_std(x)
        else:
            offset = x.min(axis=0).astype(np.float64)
            scale = x.max(axis=0).astype(np.float64) - offset
        # a constant feature maps to 0 instead of NaN; so does one whose spread is too small for float32 to
        # divide by (subnormal: it would round to 0 and give 0/0), or not a number at all
        scale[~(scale >= np.finfo(np.float32).tiny)] = 1.0
        return cls(kind, offset, scale)

    def transform(self, x: np.ndarray, dtype, in_place: bool = False) -> np.ndarray:
        """``(x - offset) / scale`` as ``dtype``; ``in_place`` reuses ``x`` when it is already that dtype."""
        out = np.asarray(x, dtype=dtype)
        if out is x and not in_place:
            out = out.copy()
        if self.kind.method == "none":
            return out
        out -= self.offset.astype(dtype)
        out /= self.scale.astype(dtype)
        return out

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return y * self.scale + self.offset if self.kind.method != "none" else y

    def arrays(self, prefix: str) -> dict:
        return {
            f"{prefix}.method": np.array(self.kind.method),
            f"{prefix}.divisor": np.array(self.kind.divisor),
            f"{prefix}.offset": self.offset,
            f"{prefix}.scale": self.scale,
        }

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> Preprocessor:
        if f"{prefix}.method" in arrays:
            kind = Scaling(str(arrays[f"{prefix}.method"]), float(arrays[f"{prefix}.divisor"]))
        else:  # run directories written before: the kind as text, "255.0" for a divisor
            text = str(arrays[f"{prefix}.kind"])
            kind = Scaling(text) if text in Scaling.METHODS else Scaling("divide", float(text))
        return cls(kind, np.asarray(arrays[f"{prefix}.offset"]), np.asarray(arrays[f"{prefix}.scale"]))


def _mean_std(x: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (population) standard deviation, in float64, a few thousand rows at a time.

    Each chunk's mean and sum of squared deviations are merged with Chan et al.'s update, which stays exact
    where E[x^2] - E[x]^2 cancels (a feature of mean 1e8 and std 1 had std 1.41 that way); no float64 copy of
    the whole set is made.
    """
    shape = x.shape[1:]
    n, mean, m2 = 0, np.zeros(shape), np.zeros(shape)
    for start in range(0, len(x), chunk):
        block = np.asarray(x[start : start + chunk], dtype=np.float64)
        k = len(block)
        block_mean = block.mean(axis=0)
        block_m2 = np.square(block - block_mean).sum(axis=0)
        delta = block_mean - mean
        total = n + k
        mean += delta * (k / total)
        m2 += block_m2 + np.square(delta) * (n * k / total)
        n = total
    return mean, np.sqrt(m2 / max(n, 1))


@dataclass
class Preparation:
    """Everything fitted on the training split that new data must go through again."""

    inputs: Preprocessor
    targets: Preprocessor | None = None
    encoder: TableEncoder | None = None
    class_names: list[str] | None = None

    def save(self, path) -> None:
        from dnncli.files import atomic_savez

        arrays = self.inputs.arrays("x")
        if self.targets is not None:
            arrays.update(self.targets.arrays("y"))
        if self.encoder is not None:
            arrays["table"] = np.array(self.encoder.to_json())
        if self.class_names is not None:
            arrays["class_names"] = np.array(json.dumps(self.class_names))
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path) -> Preparation:
        """A run's ``preprocessing.npz``; one that is damaged (not an archive, empty, arrays missing or of the wrong
        kind) is one line naming it: the run's input scaling is lost with it."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            return cls(
                Preprocessor.from_arrays(arrays, "x"),
                Preprocessor.from_arrays(arrays, "y") if "y.scale" in arrays else None,
                TableEncoder.from_json(str(arrays["table"])) if "table" in arrays else None,
                json.loads(str(arrays["class_names"])) if "class_names" in arrays else None,
            )
        except DnnError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError, IndexError) as err:
            what = f"no {err.args[0]!r} in it" if isinstance(err, KeyError) and err.args else str(err)
            raise DnnError(
                f"{path}: not a readable preprocessing file ({what}); the run's input scaling is lost: train anew."
            ) from None
