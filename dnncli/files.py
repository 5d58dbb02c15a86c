"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed over it.

The one writer of every file the tool creates. A full disk or a directory that cannot be written is one
``StorageError`` naming the directory, the space free and the space needed; whatever was there before is
left as it was.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError


class StorageError(DnnError):
    """A file could not be written: no space left, or no permission. What was on disk before is intact."""


def storage_error(err: OSError, path, needed: int | None = None) -> StorageError:
    """The one-line error for an ``OSError`` raised while writing ``path``."""
    path = Path(path)
    directory = path.parent
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        try:
            free = f"{_size(shutil.disk_usage(directory).free)} free"
        except OSError:
            free = "free space unknown"
        need = f", about {_size(needed)} needed" if needed else ""
        return StorageError(f"{directory}: no space left on the device for {path.name} ({free}{need}).")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"{directory}: cannot write {path.name} ({err.strerror}).")
    return StorageError(f"{path}: cannot write ({err.strerror or err}).")


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def atomic_write(path, write: Callable, binary: bool, exclusive: bool = False) -> None:
    """Call ``write(f)`` into memory, then put the bytes in a temporary file beside ``path``, flushed to disk,
    and move it to ``path``.

    An interruption leaves either the old file or the new one, never half of one. ``exclusive``: refuse
    (``FileExistsError``, without a race) if ``path`` exists, instead of replacing it.
    """
    path = Path(path)
    buffer = io.BytesIO() if binary else io.StringIO(newline="")
    write(buffer)
    data = buffer.getvalue() if binary else buffer.getvalue().encode("utf-8")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, _mode(path))  # mkstemp's 0600 would make every run file private
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if path exists, unlike a rename
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except FileExistsError:
        _remove(tmp)
        raise
    except OSError as err:
        _remove(tmp)
        raise storage_error(err, path, len(data)) from None
    except BaseException:
        _remove(tmp)
        raise


def _mode(path: Path) -> int:
    """The mode ``open()`` gives: the replaced file's own, else ``0o666`` less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux says it without changing it (os.umask can only set it, racing other threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def append_text(path, text: str) -> None:
    """Append ``text`` to ``path`` and flush it to disk (a log that grows; a reader drops a half-written last line)."""
    try:
        with open(path, "a", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise storage_error(err, path, len(text.encode("utf-8"))) from None


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def check_replaceable(path, option: str = "") -> None:
    """Refuse, naming it, a ``path`` that exists and is not a regular file: a writer told to replace (``--force``)
    replaces a regular file, never a directory, a FIFO, a device such as ``/dev/null``, a socket or a link.

    ``option``: the command-line option that named ``path`` (``--out``), to prefix the message with.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise DnnError(f"{option + ' ' if option else ''}{path}: cannot be looked at ({err.strerror}).") from None
    if stat.S_ISREG(mode):
        return
    kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
    raise DnnError(
        f"{option + ' ' if option else ''}{path}: exists already, and is {kind}, not a regular file: only a regular"
        " file is ever replaced; give a file name."
    )


def check_readable(path) -> None:
    """Refuse, naming it, a ``path`` to read that exists and is not a regular file: a FIFO would hold the reader
    forever, a device would feed it without end. A missing one is left to the reader to say."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
        raise DnnError(f"{path}: {kind}, not a regular file; a run's files are regular files.")


def check_target(path, force: bool, option: str = "") -> None:
    """Before the work of a command that writes ``path``: refuse anything but a regular file (``check_replaceable``),
    an existing file unless ``force``, and a directory that does not exist; each in one line naming ``path``."""
    check_replaceable(path, option)
    if not force and os.path.lexists(path):
        raise exists_already(path, option)
    if not Path(path).parent.is_dir():
        label = f"{option} {path}" if option else str(path)
        raise DnnError(f"{label}: the directory {Path(path).parent} does not exist.")


def exists_already(path, option: str = "") -> DnnError:
    """The one line for a ``path`` to write that exists and may only be replaced with ``--force``: said by
    ``check_target`` before the work, and by a writer whose exclusive write (``atomic_write``) lost a race."""
    label = f"{option} {path}" if option else str(path)
    return DnnError(f"{label}: exists already; choose another file, or replace it with --force.")


def _remove(tmp) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), binary=False)


def atomic_savez(path, arrays: Mapping[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)
