"""Weights files: a model's weights as NPZ, ``layer{i}.{param}``, read back with every key and shape checked."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError
from dnncli.files import atomic_savez


def save_weights(model, path) -> None:
    """Write every weight of ``model`` to an NPZ file, atomically (temporary file, then rename)."""
    atomic_savez(path, model.weights_dict())


def read_weights(path) -> dict[str, np.ndarray]:
    """The arrays of an NPZ weights file (no pickles); an unreadable file is one clear error."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DnnError(f"{path}: no such weights file.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DnnError(f"{path}: not a readable NPZ weights file ({err}).") from None


def load_weights(model, path) -> None:
    """Read weights written by ``save_weights`` into ``model``; a missing, extra or misshapen key is an error."""
    model.set_weights_dict(read_weights(path), source=str(path))
