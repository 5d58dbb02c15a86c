"""Array files read with their sizes checked first, and the checks every pair of inputs and targets passes.

A file's header says how large its array is: a ``.npy`` header, an ``.npz`` member's ``.npy`` header, an IDX
header. That size is checked against this machine's memory (as the model's size is, in ``nn.model``) before
anything is allocated, so that a header of a few bytes that claims a terabyte, or a zipped member that inflates
to gigabytes of zeros, is one line naming the file and the size instead of an exhausted machine.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError
from dnncli.nn import model as model_mod

FLOAT32_MAX = float(np.finfo(np.float32).max)


def memory_bytes() -> int:
    """This machine's memory, as the model's size is checked against it."""
    return model_mod.memory_bytes()


def size_text(n: int) -> str:
    """``1.5 GiB``: a byte count for a message."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""  # not reached


def check_fits(nbytes: int, what: str, key: tuple = (), fix: str = "") -> None:
    """Raise if ``nbytes`` (what ``what`` needs) is more than this machine's memory; ``fix``: what to do."""
    memory = memory_bytes()
    if nbytes > memory:
        fix = fix or "nothing was read; check the file, or use a smaller part of it"
        raise DnnError(
            f"{what} needs {size_text(nbytes)}, more than this machine's memory ({size_text(memory)}); {fix}.", key
        )


def overflow_message(where: str, value: float, limit: float) -> str:
    """What to do about a feature too large for the model's dtype."""
    kind = "float32 (max ~3.4e38)" if limit <= FLOAT32_MAX else "the model's dtype"
    fix = "rescale the column (check its units)" + (", or use dtype: float64" if limit <= FLOAT32_MAX else "")
    return f"{where} is {value:g}, which overflows {kind}; {fix}."


def target_overflow(what: str, limit: float) -> str:
    """What to do about a regression target too large for the model's dtype."""
    kind = "float32 (max ~3.4e38)" if limit <= FLOAT32_MAX else "the model's dtype"
    return f"{what}, which overflows {kind}; check the targets' units, or divide them (data.target_scale: 1e6, say)."


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def npy_header(f, name: str) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data bytes) from the ``.npy`` header at ``f``'s position; ``name`` is for messages."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:  # 3.0 only adds UTF-8 field names, of structured arrays: never numbers
            raise ValueError(f"format version {version[0]}.{version[1]} holds structured arrays, not numbers")
    except (ValueError, EOFError, OSError, SyntaxError) as err:
        raise DnnError(f"{name}: not a readable .npy file ({err}).") from None
    if dtype.hasobject:
        raise DnnError(f"{name}: holds Python objects (dtype {dtype}); inputs and targets must be numbers.")
    nbytes = math.prod(shape) * dtype.itemsize  # Python integers: a header's dimensions cannot overflow here
    check_fits(nbytes, f"{name}: its header declares shape {_shape_text(shape)} of {dtype}, which")
    return tuple(shape), dtype, nbytes


def load_npy(path: Path, mmap_bytes: int) -> np.ndarray:
    """An ``.npy`` file, its declared size checked first; memory-mapped when larger than ``mmap_bytes``."""
    try:
        with open(path, "rb") as f:
            shape, dtype, nbytes = npy_header(f, str(path))
            have = path.stat().st_size - f.tell()
    except FileNotFoundError:
        raise DnnError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise DnnError(f"{path}: is a directory, not an .npy file.") from None
    except OSError as err:
        raise DnnError(f"{path}: cannot read ({err.strerror}).") from None
    if have < nbytes:
        raise DnnError(
            f"{path}: its header declares shape {_shape_text(shape)} of {dtype} ({nbytes} bytes of data),"
            f" but the file holds {have}; it is truncated."
        )
    try:
        return np.load(path, mmap_mode="r" if nbytes > mmap_bytes else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DnnError(f"{path}: not a readable .npy file ({err}).") from None


def load_npz(path: Path, keys, where: str = "") -> dict[str, np.ndarray]:
    """Arrays ``keys`` of an NPZ file, each member's declared size checked before it is inflated.

    ``where`` prefixes the messages (``--data `` for ``dnn eval``).
    """
    name = f"{where}{path}"
    try:
        with zipfile.ZipFile(path) as zf:
            members = {m[:-4] if m.endswith(".npy") else m: m for m in zf.namelist()}
            for key in keys:
                if key not in members:
                    raise DnnError(f"{name}: no array {key!r}; it holds {', '.join(members) or 'none'}.")
            total = 0
            for key in keys:
                info = zf.getinfo(members[key])
                with zf.open(info) as f:
                    _shape, _dtype, nbytes = npy_header(f, f"{name}: array {key!r}")
                    total += nbytes
                    if info.file_size < f.tell() + nbytes:
                        raise DnnError(f"{name}: array {key!r} is truncated (its header declares more data).")
            check_fits(total, f"{name}: arrays {', '.join(map(repr, keys))} together")
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except FileNotFoundError:
        raise DnnError(f"{name}: no such file.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        if isinstance(err, DnnError):
            raise
        raise DnnError(f"{name}: not a readable NPZ file ({err}).") from None


def checked_pair(path, x, y, what: str = "inputs", targets: str = "targets"):
    """Inputs and targets of one file: arrays with a sample axis, as many of each, at least one, inputs numbers."""
    for array, name in ((x, what), (y, targets)):
        if np.ndim(array) == 0:
            raise DnnError(
                f"{path}: the {name} are a single value (a 0-d array); they need one entry per sample (shape (n, ...))."
            )
    if len(x) != len(y):
        raise DnnError(f"{path}: {len(x)} {what} but {len(y)} {targets}.")
    if len(x) == 0:
        raise DnnError(f"{path}: no samples.")
    if not np.issubdtype(x.dtype, np.number):
        raise DnnError(f"{path}: {what} must be numbers. Received: dtype {x.dtype}")
    return x, y


def regression_targets(y, where: str, limit: float | None = None) -> np.ndarray:
    """Targets of a regression as float64: numbers, finite (at most ``limit``), never cast through an integer type."""
    y = np.asarray(y)
    if y.ndim == 0:
        raise DnnError(f"{where}: the targets are a single value (a 0-d array); they need one entry per sample.")
    if y.dtype.kind not in "biuf":
        raise DnnError(
            f"{where}: a regression's targets must be numbers. Received: dtype {y.dtype}"
            + (f" (e.g. {y.reshape(-1)[0].item()!r})" if y.size else "")
        )
    y = y.astype(np.float64)
    flat = y.reshape(len(y), -1)
    bad = ~np.isfinite(flat)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        column = f", column {col}" if y.ndim > 1 else ""
        raise DnnError(
            f"{where}: the target of sample {row} (from 0){column} is {flat[row, col]};"
            " regression targets must be finite numbers."
        )
    if limit is not None and (np.abs(flat) > limit).any():
        row, col = np.argwhere(np.abs(flat) > limit)[0]
        column = f", column {col}" if y.ndim > 1 else ""
        raise DnnError(
            target_overflow(f"{where}: the target of sample {row} (from 0){column} is {flat[row, col]:g}", limit)
        )
    return y


def check_range(x, limit: float, where: str, chunk: int = 1 << 16) -> None:
    """Refuse a finite input larger than ``limit`` (float32's 3.4e38: 1e300 would become inf), naming its sample
    (from 0, in the file's order) and feature; a few thousand rows at a time, so no copy of the whole set is made."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim == 0 or limit >= np.finfo(x.dtype).max:
        return
    for start in range(0, len(x), chunk):
        block = np.asarray(x[start : start + chunk]).reshape(min(chunk, len(x) - start), -1)
        with np.errstate(invalid="ignore"):
            big = np.abs(block) > limit
        if big.any():
            row, col = np.argwhere(big)[0]
            value = float(block[row, col])
            raise DnnError(overflow_message(f"{where}: sample {start + row}, feature {col}", value, limit))


def synthetic_bytes(n_samples: int, n_features: int) -> int:
    """About what generating ``n_samples`` synthetic samples needs: inputs, targets and the generator's temporaries."""
    return n_samples * (n_features + 1) * 8 * 4
