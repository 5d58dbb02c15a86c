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
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DnnError(f"{path}: no such weights file.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DnnError(f"{path}: not a readable NPZ weights file ({err}).") from None
    for key, array in arrays.items():  # text where weights go fails far from here, in a matrix product
        if array.dtype.kind not in "biuf" and key != "meta":  # a checkpoint's metadata is its one text array
            raise DnnError(f"{path}: {key!r} holds {array.dtype} values, not numbers; not a weights file dnn wrote.")
    return arrays


def load_weights(model, path) -> None:
    """Read weights written by ``save_weights`` into ``model``; a missing, extra or misshapen key is an error."""
    model.set_weights_dict(read_weights(path), source=str(path))


def read_init_weights(path) -> dict[str, np.ndarray]:
    """The weights a warm start reads, keyed ``layer{i}.{param}``: a run directory's (its ``model.npz``, else its
    checkpoint's), a weights file's (``model.npz``, ``best.npz``) or a ``checkpoint.npz``'s."""
    path = Path(path)
    if path.is_dir():
        for name in ("model.npz", "checkpoint.npz"):
            if (path / name).is_file():
                return read_init_weights(path / name)
        raise DnnError(f"--init-weights {path}: a directory without model.npz or checkpoint.npz (not a run directory).")
    arrays = read_weights(path)
    if "meta" in arrays or any(k.startswith("weights.") for k in arrays):  # a checkpoint: its weights only
        return {k.removeprefix("weights."): v for k, v in arrays.items() if k.startswith("weights.")}
    return arrays


def load_init_weights(model, path) -> None:
    """Start ``model`` from the weights at ``path`` (see ``read_init_weights``); another architecture is one error
    that lists each layer whose weights differ, with both shapes."""
    stored = read_init_weights(path)
    differences = architecture_differences(model, stored, f"--init-weights {path}")
    if differences:
        more = f"; and {len(differences) - 6} more" if len(differences) > 6 else ""
        raise DnnError(
            f"--init-weights {path}: the architectures differ: {'; '.join(differences[:6])}{more}."
            " A warm start needs the same layers and units."
        )
    for key, array in stored.items():
        # a start from NaN would be kept as the run's "last finite" state, and every step would be non-finite
        if np.issubdtype(np.asarray(array).dtype, np.number) and not np.isfinite(array).all():
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise DnnError(
                f"--init-weights {path}: {key} holds {bad} non-finite value{'s' if bad != 1 else ''} (NaN or"
                " infinity): a diverged model's weights cannot be a start. Use an earlier checkpoint or best.npz."
            )
    model.set_weights_dict(stored, source=str(path))


def _params(shapes: dict) -> str:
    return ", ".join(f"{p} {_shape(s)}" for p, s in shapes.items())


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


def architecture_differences(model, stored: dict[str, np.ndarray], source: str = "weights") -> list[str]:
    """One phrase per layer whose weights in ``stored`` differ from ``model``'s in name or shape; empty if none do."""
    ours: dict[int, dict[str, tuple]] = {}
    for key, array in model.weights_dict().items():
        index, param = key.removeprefix("layer").split(".", 1)
        ours.setdefault(int(index), {})[param] = array.shape
    theirs: dict[int, dict[str, tuple]] = {}
    for key, array in stored.items():
        index, _, param = key.removeprefix("layer").partition(".")
        if not (key.startswith("layer") and index.isdigit() and param):
            listed = ", ".join(sorted(stored)[:5]) or "nothing"
            raise DnnError(f"{source}: {key!r} is not a weight key (layer<i>.<param>); the file holds {listed}.")
        theirs.setdefault(int(index), {})[param] = np.shape(array)
    out = []
    for i in sorted(set(ours) | set(theirs)):
        mine, file = ours.get(i, {}), theirs.get(i, {})
        if mine == file:
            continue
        if i < len(model.layers):
            layer = model.layers[i]
            label = f"layer {i} {layer.name}"
        else:
            label = f"layer {i}"
        if not mine:
            where = "no such layer" if i >= len(model.layers) else f"a {layer.type_name} layer without weights"
            out.append(f"{label}: {_params(file)} in the file, {where} in the config")
            continue
        if not file:
            out.append(f"{label}: {_params(mine)} in the config, no weights in the file")
            continue
        parts = []
        for p in list(mine) + [p for p in file if p not in mine]:
            if p not in file:
                parts.append(f"{p} {_shape(mine[p])} in the config, not in the file")
            elif p not in mine:
                parts.append(f"{p} {_shape(file[p])} in the file, not in the config")
            elif mine[p] != file[p]:
                parts.append(f"{p} {_shape(file[p])} in the file, {_shape(mine[p])} in the config")
        out.append(f"{label}: {', '.join(parts)}")
    return out
