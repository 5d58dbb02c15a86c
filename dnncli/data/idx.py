"""The IDX format of MNIST and Fashion-MNIST, gzipped or raw, with its header checked against its size."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from dnncli.data.arrays import check_fits
from dnncli.errors import DnnError

# third byte of the magic number -> dtype (big-endian for multi-byte types)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
STANDARD_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an array of its declared shape and type.

    The header is read first and its size checked against this machine's memory and against the file, before
    the data is read: a header that claims more than there is, or a gzip that inflates past it, is refused.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw) if gz else raw
            return _read(path, f, gz, path.stat().st_size)
    except FileNotFoundError:
        raise DnnError(f"{path}: no such file.") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DnnError(f"{path}: truncated or corrupt gzip data ({err}).") from None
    except OSError as err:
        raise DnnError(f"{path}: cannot read ({err.strerror or err}).") from None


def _read(path: Path, f, gz: bool, file_size: int) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise DnnError(f"{path}: not an IDX file (bad magic number {magic.hex() or 'empty'}).")
    ndim = magic[3]
    dims = f.read(4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise DnnError(f"{path}: IDX header is truncated.")
    shape = tuple(int.from_bytes(dims[4 * i : 4 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[magic[2]])
    header = 4 + 4 * ndim
    expected = header + math.prod(shape) * dtype.itemsize  # Python integers: dimensions cannot overflow
    check_fits(expected - header, f"{path}: its IDX header declares shape {list(shape)} of {dtype.name}, which")
    if not gz and file_size != expected:
        raise DnnError(
            f"{path}: the IDX header declares shape {list(shape)} ({expected} bytes), but the file holds {file_size}."
        )
    body = f.read(expected - header)
    extra = 0
    while gz and extra <= _EXTRA_COUNTED and (block := f.read(1 << 20)):  # count what follows, up to a bound
        extra += len(block)
    if len(body) != expected - header or extra:
        held = f"{header + len(body) + extra}" + (" or more" if extra > _EXTRA_COUNTED else "")
        raise DnnError(
            f"{path}: the IDX header declares shape {list(shape)} ({expected} bytes), but the file holds {held}."
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


_EXTRA_COUNTED = 16 << 20  # bytes past the declared size that a message counts exactly


def find_standard(directory: Path, stem: str) -> Path:
    """``stem.gz`` or ``stem`` inside ``directory``."""
    for name in (stem + ".gz", stem):
        if (directory / name).exists():
            return directory / name
    raise DnnError(f"{directory}: no {stem}.gz (or {stem}) in this directory.")
