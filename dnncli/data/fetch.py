"""Download the classic IDX datasets, verified by md5, resumable, never half-written.

Each file downloads to ``<name>.part``; an interrupted download continues from
where it stopped (an HTTP Range request) the next time; only a file whose md5
matches the published checksum is renamed to its final name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dnncli.data.watched import Watchdog
from dnncli.errors import DnnError, suggest

DATASETS = {
    "mnist": {
        "urls": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        "files": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "sizes": {
            "train-images-idx3-ubyte.gz": 9912422,
            "train-labels-idx1-ubyte.gz": 28881,
            "t10k-images-idx3-ubyte.gz": 1648877,
            "t10k-labels-idx1-ubyte.gz": 4542,
        },
    },
    "fashion-mnist": {
        "urls": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "files": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "sizes": {
            "train-images-idx3-ubyte.gz": 26421880,
            "train-labels-idx1-ubyte.gz": 29515,
            "t10k-images-idx3-ubyte.gz": 4422102,
            "t10k-labels-idx1-ubyte.gz": 5148,
        },
    },
}
CHUNK = 1 << 16
UNKNOWN_SIZE_BOUND = 1 << 30  # a file whose published size is not listed is cut off here
# a server that sends less than this, over each window of the timeout's length, has stalled (as curl's
# --speed-limit): a socket timeout alone never fires on one that trickles a byte a little faster than it
MIN_BYTES_PER_SECOND = 1024  # (data.watched.Watchdog enforces it)


def size_bound(size: int | None) -> int:
    """The most bytes a download of a file published at ``size`` bytes may take: the size plus a margin."""
    return UNKNOWN_SIZE_BOUND if size is None else size + size // 10 + (64 << 10)


class TooLarge(Exception):
    """A server sent, or announced, more than the file's bound: the download is deleted, not resumed."""


class Stalled(Exception):
    """A server sent too little for too long: what arrived is kept, and the next run resumes from it."""


Progress = Callable[[str, int, int | None], None]


def md5sum(path: Path) -> str:
    return digest(path, "md5")


def digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file, read a MiB at a time."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, part: Path, name: str, progress: Progress | None, timeout: float, bound: int) -> None:
    offset = part.stat().st_size if part.exists() else 0
    if offset > bound:
        raise TooLarge(f"{url}: the partial download holds {offset} bytes; this file is at most {bound}")
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with Watchdog(timeout, MIN_BYTES_PER_SECOND) as watch:
        try:
            done, total = _receive(watch, request, url, part, offset, name, progress, timeout, bound)
        except (OSError, http.client.HTTPException) as err:
            if watch.stalled is None:
                raise
            raise _stalled(url, watch, timeout, part) from err  # say so, not what the read then saw
        if watch.stalled is not None:
            raise _stalled(url, watch, timeout, part)
    if total is not None and done < total:
        raise DnnError(f"{url}: the connection closed after {done} of {total} bytes; run the command again to resume.")


def _stalled(url: str, watch: Watchdog, timeout: float, part: Path) -> Stalled:
    kept = part.stat().st_size if part.exists() else 0
    return Stalled(
        f"{url}: the server sent {watch.stalled} bytes in {timeout:.0f} s (under {MIN_BYTES_PER_SECOND // 1024}"
        f" KiB/s); {kept} bytes are kept"
    )


def _receive(watch, request, url, part, offset, name, progress, timeout, bound) -> tuple[int, int | None]:
    """The response to ``request`` appended to ``part``: (bytes of the file now held, its size if announced)."""
    try:
        response = watch.opener().open(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the .part is complete already (or longer than the file)
            return offset, None
        raise
    with response:
        # a server that ignores the range sends the whole file again: what the .part holds of it is read past, not
        # thrown away (the md5 at the end checks the two agree)
        skip = offset if offset and response.status != 206 else 0
        length = response.headers.get("Content-Length")
        total = int(length) + offset - skip if length is not None else None
        if total is not None and total > bound:
            raise TooLarge(f"{url}: the server announces {total} bytes; this file is at most {bound}")
        with open(part, "ab") as f:
            done = offset
            try:
                while True:
                    block = response.read1(CHUNK)  # what the socket has: the count moves as the server sends
                    if not block:
                        break
                    watch.received += len(block)
                    if skip:
                        drop = min(skip, len(block))
                        skip, block = skip - drop, block[drop:]
                    f.write(block)
                    done += len(block)
                    if done > bound:  # a server that sends more than it said, or never stops
                        raise TooLarge(f"{url}: the server sent more than {bound} bytes, the most this file can be")
                    if progress and block:
                        progress(name, done, total)
            finally:
                f.flush()
                os.fsync(f.fileno())
    if skip and watch.stalled is None:
        raise TooLarge(f"{url}: the server sent {watch.received} bytes, fewer than the partial download's {offset}")
    return done, total


def fetch(
    name: str,
    directory,
    base_url: str | None = None,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> list[tuple[str, str]]:
    """Download dataset ``name`` into ``directory``; return (file, status) pairs.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
        Which dataset.
    directory : path
        Where the four files go; created if needed.
    base_url : str or None, default=None
        Download from this URL (ending in the folder of the files) instead of the public mirrors.
    progress : callable or None, default=None
        Called as ``progress(file, bytes_done, bytes_total_or_None)``.
    timeout : float, default=60.0
        Seconds to wait for a server; also the window over which a download slower than 1 KiB/s counts as
        stalled (stopped, kept, and resumed by the next run).
    """
    if name not in DATASETS:
        raise DnnError(f"unknown dataset {name!r}.{suggest(name, DATASETS)} Known: {', '.join(DATASETS)}.")
    spec = DATASETS[name]
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise DnnError(f"{directory}: is a file, not a directory; name a directory for the {name} files (--dir).")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DnnError(f"{directory}: cannot create the directory ({err.strerror or err}).") from None
    urls = [base_url] if base_url else spec["urls"]
    report = []
    for file, md5 in spec["files"].items():
        final = directory / file
        if final.exists() and md5sum(final) == md5:
            report.append((file, "present"))
            continue
        part = directory / (file + ".part")
        bound = size_bound(spec.get("sizes", {}).get(file))
        errors, too_large = [], 0
        for base in urls:
            url = base.rstrip("/") + "/" + file
            try:
                _download(url, part, file, progress, timeout, bound)
                break
            except TooLarge as err:
                part.unlink(missing_ok=True)  # nothing of it is kept, nor resumed
                errors.append(f"{err}; the download was deleted")
                too_large += 1
            except Stalled as err:
                errors.append(str(err))
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
                errors.append(f"{url}: {getattr(err, 'reason', err)}")
        else:
            again = "" if too_large == len(errors) else " Run the command again to resume."
            raise DnnError(f"cannot download {file}: {'; '.join(errors)}.{again}")
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise DnnError(f"{file}: md5 {got} does not match the published {md5}; the download was deleted.")
        os.replace(part, final)
        report.append((file, "downloaded"))
    return report
