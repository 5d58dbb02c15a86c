"""The IDX format of MNIST and Fashion-MNIST, gzipped or raw, with its header checked against its size."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

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
    """Read one IDX file (``.gz`` or raw) into an array of its declared shape and type."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DnnError(f"{path}: no such file.") from None
    except OSError as err:
        raise DnnError(f"{path}: cannot read ({err.strerror}).") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DnnError(f"{path}: truncated or corrupt gzip data ({err}).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DnnError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DnnError(f"{path}: IDX header is truncated.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DnnError(
            f"{path}: the IDX header declares shape {list(shape)} ({expected} bytes), but the file holds {len(raw)}."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_standard(directory: Path, stem: str) -> Path:
    """``stem.gz`` or ``stem`` inside ``directory``."""
    for name in (stem + ".gz", stem):
        if (directory / name).exists():
            return directory / name
    raise DnnError(f"{directory}: no {stem}.gz (or {stem}) in this directory.")
