"""Download the classic IDX datasets, verified by md5, resumable, never half-written.

Each file downloads to ``<name>.part``; an interrupted download continues from
where it stopped (an HTTP Range request) the next time; only a file whose md5
matches the published checksum is renamed to its final name.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

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
    },
    "fashion-mnist": {
        "urls": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "files": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}
CHUNK = 1 << 16

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


def _download(url: str, part: Path, name: str, progress: Progress | None, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the .part is complete already (or longer than the file)
            return
        raise
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as f:
            done = offset
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                done += len(block)
                if progress:
                    progress(name, done, total)
            f.flush()
            os.fsync(f.fileno())
    if total is not None and done < total:
        raise DnnError(f"{url}: the connection closed after {done} of {total} bytes; run the command again to resume.")


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
        Seconds to wait for a server.
    """
    if name not in DATASETS:
        raise DnnError(f"unknown dataset {name!r}.{suggest(name, DATASETS)} Known: {', '.join(DATASETS)}.")
    spec = DATASETS[name]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    urls = [base_url] if base_url else spec["urls"]
    report = []
    for file, md5 in spec["files"].items():
        final = directory / file
        if final.exists() and md5sum(final) == md5:
            report.append((file, "present"))
            continue
        part = directory / (file + ".part")
        errors = []
        for base in urls:
            url = base.rstrip("/") + "/" + file
            try:
                _download(url, part, file, progress, timeout)
                break
            except (urllib.error.URLError, OSError, ValueError) as err:
                errors.append(f"{url}: {getattr(err, 'reason', err)}")
        else:
            raise DnnError(f"cannot download {file}: {'; '.join(errors)}. Run the command again to resume.")
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise DnnError(f"{file}: md5 {got} does not match the published {md5}; the download was deleted.")
        os.replace(part, final)
        report.append((file, "downloaded"))
    return report
