"""The files of a run directory, in one place: which files a run writes, what a directory holds (a run, a start
that never reached its first checkpoint, the user's own files), the temporary files a killed write leaves, and
reading a run's files back.

A damaged file is one line naming it. A log re-saved by a spreadsheet (a UTF-8 byte order mark, CRLF line
endings) is read as written.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import math
import os
import re
import shlex
import stat
from pathlib import Path

from dnncli.errors import DnnError
from dnncli.files import check_readable, storage_error

# Every file and folder ``dnn train`` writes in a run directory, in the order a new run writes them; the ones
# before checkpoint.npz are all that a start writes before its first checkpoint (the epoch-0 one).
RUN_FILES = (
    ".lock",
    "config.yaml",
    "preprocessing.npz",
    "gradients.csv",
    "losses.csv",
    "checkpoint.npz",
    "history.csv",
    "tensorboard",
    "best.npz",
    "nonfinite_batch.npz",
    "model.npz",
)
START_FILES = RUN_FILES[: RUN_FILES.index("checkpoint.npz")]
LOCK_TEXT = "process "  # how a run's .lock begins: "process PID on HOST (since TIME)"
# the columns a log's reader needs, and the ones that are text (every other column is a number)
REQUIRED = {"gradients.csv": ("epoch", "step", "layer_index", "grad_norm"), "losses.csv": ("epoch", "step", "loss")}
WHOLE = ("epoch", "step", "layer_index", "samples")
TEXT = ("layer", "flags", "act_hist")  # act_hist: counts separated by spaces
_LEFTOVER = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")  # files.atomic_write's temporary name: .NAME.XXXXXXXX.tmp


# what a directory holds -----------------------------------------------------------------------------------------
def is_leftover(name: str) -> bool:
    """Whether ``name`` is the temporary file of a run file's write, left by a process killed while writing."""
    m = _LEFTOVER.fullmatch(name)
    return m is not None and m.group(1) in RUN_FILES


def remove_leftovers(directory) -> None:
    """Delete the temporary files killed writes left (best effort): with the directory's lock held, only its
    holder writes run files there."""
    for name in _names(directory):
        if is_leftover(name):
            with contextlib.suppress(OSError):
                os.unlink(Path(directory) / name)


def _names(directory) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def _lock_is_ours(path: Path) -> bool:
    if not path.is_file():  # a FIFO would hold the reader
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(64)
    except OSError:
        return False
    return text.startswith(LOCK_TEXT)


def _empty_file(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def dir_state(path) -> tuple[str, list[str]]:
    """What ``path`` holds, and the entries that say so.

    ``absent``; ``file`` (not a directory); ``empty``; ``run`` (a checkpoint or a model: a run to resume or a
    finished one); ``unfinished`` (a run's lock and only the files a start writes before its first checkpoint:
    a run that never got further); ``lost`` (a run's lock and files, but neither checkpoint nor model);
    ``foreign`` (anything else: files no run writes, or a run's names without a run's lock, as the user's own
    ``losses.csv``). The entries: those of the run, or the foreign ones.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return "absent", []
    if not path.is_dir():
        return "file", [path.name]
    try:
        names = sorted(os.listdir(path))
    except OSError as err:
        raise DnnError(f"{path}: cannot be read ({err.strerror}).") from None
    if "checkpoint.npz" in names or "model.npz" in names:
        return "run", [n for n in ("checkpoint.npz", "model.npz") if n in names]
    if not names:
        return "empty", []
    locked = ".lock" in names and _lock_is_ours(path / ".lock")
    foreign = [n for n in names if not (n in RUN_FILES or is_leftover(n)) or (n == ".lock" and not locked)]
    if foreign or not locked:
        return "foreign", foreign or names
    if all(n in START_FILES or is_leftover(n) for n in names):
        return "unfinished", names
    return "lost", names


def check_out_dir(path, force: bool, locked: bool = True) -> str:
    """Refuse, in one line, an ``--out`` directory a new run must not write in; return its state (``dir_state``).

    A run, a file, or a run's files without its checkpoint are refused; so is a directory of other files,
    unless ``force`` (then a file of a run's own names there is still refused: nothing is ever replaced).
    ``unfinished`` is taken over: the caller clears it, holding the lock. Not yet ``locked``: a directory with a
    run's lock is let through, for its lock to say first whether a run is training there now.
    """
    path = Path(path)
    state, names = dir_state(path)
    if not locked and (state in ("lost", "unfinished") or (state == "run" and _lock_is_ours(path / ".lock"))):
        return state
    if not locked and state == "foreign" and names == [".lock"] and _empty_file(path / ".lock"):
        return state  # a lock another run has just made and not yet written: the lock says whether it holds it
    if state == "file":
        raise DnnError(f"--out {path}: exists and is not a directory; choose a new or empty directory.")
    if state == "run":
        hint = f"resume it with --resume {path}, or" if "checkpoint.npz" in names else "a finished one;"
        raise DnnError(f"--out {path}: holds a run already ({names[0]}); {hint} choose another directory.")
    if state == "lost":
        files = [n for n in names if n != ".lock"]
        raise DnnError(
            f"--out {path}: holds a run's files but no checkpoint.npz to resume from ({', '.join(files)}); to train"
            f" anew in it, delete them first: {delete_command(path, files)}; or choose another directory."
        )
    if state == "foreign":
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        if not force:
            raise DnnError(
                f"--out {path}: not empty, and not a run directory (it holds {shown}); choose a new or empty"
                " directory, or add --force to write the run's files beside these."
            )
        # a run's names there, a lock too unless it is a run's (this run's own, once it holds it)
        clash = [n for n in _names(path) if n in RUN_FILES and (n != ".lock" or n in names)]
        if clash:
            them = "it" if len(clash) == 1 else "them"
            raise DnnError(
                f"--out {path}: holds {', '.join(clash)}, which a run writes; --force never replaces a file: move"
                f" {them} away, or choose another directory."
            )
    return state


def delete_command(path: Path, names: list[str]) -> str:
    """The shell command that deletes ``names`` in ``path`` (``rm -r`` for a folder such as tensorboard/)."""
    files = " ".join(shlex.quote(str(path / n)) for n in names)
    return f"rm {'-r ' if any((path / n).is_dir() for n in names) else ''}-- {files}"


def clear_unfinished(path) -> None:
    """Delete what a start that never reached its first checkpoint wrote (its lock stays: the caller holds it)."""
    for name in _names(path):
        if (name in START_FILES and name != ".lock") or is_leftover(name):
            try:
                os.unlink(Path(path) / name)
            except FileNotFoundError:
                pass
            except OSError as err:
                raise storage_error(err, Path(path) / name) from None


def make_directory(path: Path, option: str = "--out") -> list[Path]:
    """Create ``path`` and any missing parents; return those it created, outermost first. A failure is one line
    naming the path and what to do."""
    made, p = [], Path(path)
    while not os.path.lexists(p) and p != p.parent:
        made.append(p)
        p = p.parent
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DnnError(cannot_create(Path(path), err, option)) from None
    return made[::-1]


def cannot_create(path: Path, err: OSError, option: str = "--out") -> str:
    """The one line for a directory that could not be made."""
    label = f"{option} {path}" if option else str(path)
    if err.errno == errno.ENOTDIR:
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        return f"{label}: {blocker or 'a part of it'} is a file, not a directory; choose another place."
    if err.errno == errno.ENAMETOOLONG:
        return f"{label}: a name in it is too long for the file system (255 bytes at most); choose a shorter one."
    if err.errno == errno.EEXIST:
        what = "a link to nowhere" if path.is_symlink() else "not a directory"
        return f"{label}: exists and is {what}; choose another place."
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return storage_error(err, path / ".").message
    parent = next((p for p in path.parents if p.exists()), path.parent)
    return f"{label}: cannot create a directory in {parent} ({err.strerror}); choose a directory you can write."


def unmake(made: list[Path]) -> None:
    """Undo ``make_directory`` after a failed start: the directories it made, innermost first, where empty."""
    for d in reversed(made):
        with contextlib.suppress(OSError):
            d.rmdir()


def check_resumable(run_dir: Path) -> None:
    """Refuse ``--resume`` in one line saying what to do, where there is no checkpoint to resume from."""
    run_dir = Path(run_dir)
    state, names = dir_state(run_dir)
    if state == "run" and "checkpoint.npz" in names:
        return
    config = run_dir / "config.yaml"
    train = f"dnn train {config if config.is_file() else 'CONFIG'}"
    if state == "absent":
        raise DnnError(f"--resume {run_dir}: no such run directory.")
    if state == "file":
        raise DnnError(f"--resume {run_dir}: a file, not a run directory; give the directory dnn train wrote.")
    if state == "run":
        raise DnnError(
            f"--resume {run_dir}: a finished run (model.npz, no checkpoint.npz); nothing to resume. To train further"
            f" from its weights: {train} --init-weights {run_dir} --out NEW_DIR"
        )
    if state == "unfinished":
        raise DnnError(
            f"--resume {run_dir}: the run stopped before its first checkpoint (no checkpoint.npz): nothing was"
            f" trained. Start it anew there: {train} --out {run_dir}"
        )
    if state == "lost":
        raise DnnError(
            f"--resume {run_dir}: no checkpoint.npz to resume from (deleted, or lost); train anew: {train}"
            " --out NEW_DIR"
        )
    raise DnnError(f"--resume {run_dir}: not a run directory (no checkpoint.npz); give the directory dnn train wrote.")


# reading a run's files back ---------------------------------------------------------------------------------------
def read_text(path) -> str:
    """A run's text file as written, or as a spreadsheet saved it (its byte order mark dropped); one that is not
    UTF-8 text is one line naming it."""
    path = Path(path)
    check_readable(path)  # a FIFO would never end
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DnnError(f"{path}: cannot be read ({err.strerror}).") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DnnError(
            f"{path}: not a text file (byte {err.start} is 0x{data[err.start]:02x}, not UTF-8); the file is damaged."
        ) from None
    if "\0" in text:
        raise DnnError(f"{path}: not a text file (a NUL byte at {text.index(chr(0))}); the file is damaged.")
    return text


def parse_log(path, text: str, required=("epoch",)) -> tuple[list[str], list[dict]]:
    """(header, rows) of a CSV log's ``text``: whole numbers in ``WHOLE`` columns, text in ``TEXT`` ones, every
    other value a float (NaN where empty); CRLF and LF lines alike. A header without the ``required`` columns,
    or a value that is not a number, is one line naming the file, the line and the column."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return [], []
        missing = [c for c in required if c not in header]
        if missing:
            raise DnnError(
                f"{path}: no {missing[0]!r} column in its header ({', '.join(header[:6])}"
                f"{', ...' if len(header) > 6 else ''}); not a log dnn wrote, or the file is damaged."
            )
        rows = []
        for values in reader:
            if values:  # a blank line, as a spreadsheet may leave at the end
                values += [""] * (len(header) - len(values))
                rows.append({k: _value(path, reader.line_num, k, v, k in required) for k, v in zip(header, values)})
    except csv.Error as err:
        raise DnnError(f"{path}, line {reader.line_num}: not CSV ({err}); the file is damaged.") from None
    return header, rows


def _value(path, line: int, column: str, text: str, required: bool):
    if column in TEXT:
        return text
    if text.strip() == "":
        if required:
            raise DnnError(f"{path}, line {line}: no {column} value; the file is damaged (correct or delete the line).")
        return math.nan
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is None or (column in WHOLE and not number.is_integer()):
        what = "a whole number" if column in WHOLE else "a number"
        raise DnnError(
            f"{path}, line {line}: {column} is {text[:40]!r}, not {what}; the file is damaged (correct or delete"
            " the line)."
        )
    return int(number) if column in WHOLE else number


def read_history(run_dir) -> list[dict]:
    """A run's ``history.csv``, one row per epoch, numbers as numbers; a file with no rows is one line naming it
    (the file is written once an epoch has ended)."""
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        raise DnnError(f"{run_dir}: no history.csv (not a run directory, or no epoch finished yet).")
    _, rows = parse_log(path, read_text(path))
    if not rows:
        raise DnnError(f"{path}: no epoch in it; the file is empty or damaged.")
    return rows
