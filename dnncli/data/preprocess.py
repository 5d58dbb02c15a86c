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


class Preprocessor:
    """``x' = (x - offset) / scale`` per feature, fitted on the training split."""

    def __init__(self, kind, offset: np.ndarray, scale: np.ndarray):
        self.kind, self.offset, self.scale = kind, offset, scale

    @classmethod
    def fit(cls, kind, x: np.ndarray) -> Preprocessor:
        shape = x.shape[1:]
        if kind == "none":
            return cls("none", np.zeros(shape), np.ones(shape))
        if not isinstance(kind, str):
            return cls(float(kind), np.zeros(shape), np.full(shape, float(kind)))
        if kind == "standardize":
            # float64 moments, a few thousand rows at a time: no float64 copy of the whole set
            total, squares = np.zeros(shape), np.zeros(shape)
            for start in range(0, len(x), 4096):
                block = np.asarray(x[start : start + 4096], dtype=np.float64)
                total += block.sum(axis=0)
                squares += np.square(block).sum(axis=0)
            offset = total / max(len(x), 1)
            scale = np.sqrt(np.maximum(squares / max(len(x), 1) - offset**2, 0.0))
        else:
            offset = x.min(axis=0).astype(np.float64)
            scale = x.max(axis=0).astype(np.float64) - offset
        scale[scale == 0] = 1.0  # a constant feature maps to 0 instead of NaN
        return cls(kind, offset, scale)

    def transform(self, x: np.ndarray, dtype, in_place: bool = False) -> np.ndarray:
        """``(x - offset) / scale`` as ``dtype``; ``in_place`` reuses ``x`` when it is already that dtype."""
        out = np.asarray(x, dtype=dtype)
        if out is x and not in_place:
            out = out.copy()
        if self.kind == "none":
            return out
        out -= self.offset.astype(dtype)
        out /= self.scale.astype(dtype)
        return out

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return y * self.scale + self.offset if self.kind != "none" else y

    def arrays(self, prefix: str) -> dict:
        return {
            f"{prefix}.kind": np.array(str(self.kind)),
            f"{prefix}.offset": self.offset,
            f"{prefix}.scale": self.scale,
        }

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> Preprocessor:
        kind = str(arrays[f"{prefix}.kind"])
        return cls(kind, np.asarray(arrays[f"{prefix}.offset"]), np.asarray(arrays[f"{prefix}.scale"]))


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
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DnnError(f"{path}: not a readable preprocessing file ({err}).") from None
        return cls(
            Preprocessor.from_arrays(arrays, "x"),
            Preprocessor.from_arrays(arrays, "y") if "y.kind" in arrays else None,
            TableEncoder.from_json(str(arrays["table"])) if "table" in arrays else None,
            json.loads(str(arrays["class_names"])) if "class_names" in arrays else None,
        )
