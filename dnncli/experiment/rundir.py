"""Run directories: where a run's files go, and the files a run appends or reads back.

A run directory holds the resolved ``config.yaml``, ``history.csv``,
``gradients.csv``, ``preprocessing.npz``, ``checkpoint.npz`` (everything a
resume needs) and, once training ends, ``model.npz``; ``runfiles.RUN_FILES``
lists every file a run writes. Every file is written to a temporary name and
renamed (``gradients.csv`` is appended, an epoch at a time), so an interruption
never leaves a half-written file, and nothing the user had is overwritten: a
new run goes into a new or empty directory (or beside other files, never over
them, with ``--force``), or takes over a start of its own that never reached its
first checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import socket
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from dnncli.diagnostics.monitor import STEP_FIELDS
from dnncli.errors import DnnError
from dnncli.experiment import runfiles
from dnncli.experiment.runfiles import LOCK_TEXT, REQUIRED, parse_log, read_text
from dnncli.files import append_text, atomic_write, atomic_write_text, storage_error


def create_new_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, refusing (without a race) if ``path`` exists."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DnnError(f"{path}: the directory {path.parent} does not exist.")
    try:
        atomic_write(path, lambda f: f.write(text), binary=False, exclusive=True)
    except FileExistsError:
        raise DnnError(f"{path}: exists already; choose another file.") from None


def csv_text(rows: list[dict], columns: list[str], header: bool = True) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    return buf.getvalue()


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return "" if value is None else value


class RunLock:
    """One run per directory: an exclusive lock on ``DIR/.lock``, held while the run trains.

    The system releases the lock when the process ends, however it ends: a lock left by a crash is
    recognisably stale (the file still names its last holder, but nothing holds it) and is taken over.
    """

    def __init__(self, directory: Path):
        self.path = Path(directory) / ".lock"
        self.file = None

    def acquire(self, what: str, claim: bool = True) -> RunLock:
        """Take the lock, or refuse in one line naming its holder; ``claim``: write this process into it now (else
        ``claim()`` does, once the caller has looked, holding it, at what the directory holds: a refusal then leaves
        the lock file as it was)."""
        self._existed = os.path.lexists(self.path)
        try:
            f = open(self.path, "a+")  # noqa: SIM115 (held open: the lock lives as long as the file)
        except OSError as err:
            raise storage_error(err, self.path) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise DnnError(
                f"{what} {self.path.parent}: in use by {holder}; wait for it to end, or stop it first."
            ) from None
        self.file = f
        f.seek(0)
        if claim or not f.read(len(LOCK_TEXT)).startswith(LOCK_TEXT):  # naming no run (just made): claimed at once
            self.claim()
        return self

    def claim(self) -> None:
        """Write this process into the held lock: whose it is, since when."""
        f = self.file
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{LOCK_TEXT}{os.getpid()} on {socket.gethostname()} (since {datetime.now():%Y-%m-%d %H:%M:%S})\n")
            f.flush()
        except OSError as err:  # a full disk: no lock left behind that names nobody
            if not self._existed:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            self.file = None
            f.close()
            raise storage_error(err, self.path) from None

    @contextlib.contextmanager
    def released_on_error(self):
        """Within: anything raised releases the lock (and goes on)."""
        try:
            yield self
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None


def new_run_dir(name: str, out: str | None, runs_root: str = "runs", force: bool = False) -> tuple[Path, RunLock]:
    """Create and lock the run directory: ``--out DIR`` or ``runs/<name>-<time>`` (a new name, ``-2``, ``-3``, ...
    for runs started within the same second).

    ``--out DIR`` must be new or empty, or a start of a run that never reached its first checkpoint (taken over:
    its files are deleted, under the lock); a run, a directory another run holds, or one of other files is
    refused (``force``: beside other files, never over a file of a run's own names). Whatever fails, fails
    before anything is written in a directory of the user's, and a directory made for nothing is removed.
    """
    if out is not None:
        path = Path(out)
        runfiles.check_out_dir(path, force, locked=False)  # before anything is made or written
        made = runfiles.make_directory(path, "--out")
        lock = _lock(path, made, claim=False)
        with lock.released_on_error():
            if runfiles.check_out_dir(path, force) == "unfinished":  # again, holding the lock
                runfiles.clear_unfinished(path)
            lock.claim()  # only now: a directory refused keeps its lock file as it was
        return path, lock
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(runs_root)
    runfiles.make_directory(root, "")
    for n in range(1, 1000):
        path = root / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir()  # atomic: of two runs started together, one gets the name, the other the next
        except FileExistsError:
            continue
        except OSError as err:
            raise DnnError(runfiles.cannot_create(path, err, "")) from None
        return path, _lock(path, [path])
    raise DnnError(f"{root}: cannot find a free run directory name for {name}-{stamp}.")


def _lock(path: Path, made: list[Path], claim: bool = True) -> RunLock:
    """Lock a new run's directory; if that fails, remove the directories just made for it."""
    try:
        return RunLock(path).acquire("--out", claim)
    except BaseException:
        runfiles.unmake(made)
        raise


LOSS_FIELDS = ("epoch", "step", "samples", "seconds", "loss")  # losses.csv: each step's batch loss


class StepLog:
    """A per-step log of a run (``gradients.csv``, ``losses.csv``), appended once an epoch, never rewritten.

    Appending keeps a run's cost linear in its length. A resumed run first cuts
    the file back to its checkpoint's step (records of an epoch that did not
    reach a checkpoint, or a line half written when the process died).
    """

    def __init__(self, path: Path, fields=STEP_FIELDS):
        self.path = Path(path)
        self.fields = list(fields)

    def create(self) -> None:
        atomic_write_text(self.path, csv_text([], self.fields))

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        if not self.path.exists():
            self.create()
        append_text(self.path, csv_text(records, self.fields, header=False))

    def cut_to(self, step: int) -> list[dict]:
        """Keep the records up to ``step`` (rewriting the file only if anything goes, or if it is not as this
        log writes it: emptied, other columns, CRLF lines from a spreadsheet); return them."""
        if not self.path.exists():
            self.create()
            return []
        text = read_text(self.path)
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        header, records = parse_log(self.path, complete, REQUIRED.get(self.path.name, ("epoch", "step")))
        kept = [r for r in records if r["step"] <= step]
        if len(kept) != len(records) or complete != text or header != self.fields or "\r" in complete:
            atomic_write_text(self.path, csv_text(kept, self.fields))
        return kept


def read_step_records(path: Path) -> list[dict]:
    """The monitor's rows back from ``gradients.csv`` (or ``losses.csv``'s), numbers as numbers; a half-written
    last line is dropped, a damaged file is one line naming it."""
    path = Path(path)
    if not path.exists():
        return []
    text = read_text(path)
    text = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return parse_log(path, text, REQUIRED.get(path.name, ("epoch", "step")))[1]


def skipped_events(run_dir: Path) -> list[dict]:
    """The batches a run skipped as non-finite (``on_nonfinite: skip_batch``), from its checkpoint; none from a
    checkpoint that cannot be read (``--resume`` names it)."""
    from dnncli.experiment.checkpoint import events_of

    return [e for e in events_of(Path(run_dir) / "checkpoint.npz") if _is_event(e)]


def _is_event(e) -> bool:
    if not isinstance(e, dict) or not all(isinstance(e.get(k), int) for k in ("epoch", "step")):
        return False
    return isinstance(e.get("stage"), str) and "skipped" in e and isinstance(e.get("layer", ""), (int, type(None)))


def nonfinite_event(run_dir: Path) -> dict | None:
    """Where a run stopped on a non-finite batch, from its ``nonfinite_batch.npz``; None if it did not."""
    path = Path(run_dir) / "nonfinite_batch.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            stage = str(npz["stage"]) if "stage" in npz.files else "loss"
            layer = int(npz["layer"]) if "layer" in npz.files else -1
            step, epoch = int(npz["step"]), int(npz["epoch"])
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    layer = None if layer < 0 else layer
    where = "" if layer is None else f" of layer {layer}"
    detail = f"non-finite {stage}{where} (training stopped)"
    return {"stage": stage, "layer": layer, "step": step, "epoch": epoch, "skipped": False, "detail": detail}


def nonfinite_remedies(config, run_dir: Path, stage: str, advice: list[dict] | None = None) -> str:
    """What to change after a stop on non-finite values: the diagnosis's own advice, causes first (``advice``, as
    ``inspect-gradients`` gives it), as overrides of the run's own config; a resume would repeat the same steps with
    the same settings and stop again. Without advice, the remedies that bound any overflow."""
    run_dir = Path(run_dir)
    changes = [(a["command"], _gist(a["text"])) for a in (advice or [])[:MAX_REMEDIES]]
    if not changes:
        changes = [(f"--set {c}", why) for c, why in _generic_remedies(config, stage)]
    text = "Resuming would repeat the same steps with the same settings and stop again; change one and train anew"
    train = f"dnn train {run_dir / 'config.yaml'}"
    if changes:
        text += ", causes first:"
        for k, (cmd, why) in enumerate(changes, start=1):
            how = f"{train} {cmd}" if len(cmd) <= 200 else "too long to paste: --write-config below writes it"
            text += f"\n  {k}. {why}:\n     {how}"
    return (
        f"{text}\nTo try each on this network and write the one that cures: dnn inspect-gradients {run_dir}"
        f" --try-advice --write-config FIXED.yaml\nCheck the inputs of the samples listed in"
        f" {run_dir / 'nonfinite_batch.npz'}."
    )


MAX_REMEDIES = 3  # the advice a stop message lists; inspect-gradients has them all


def _gist(text: str) -> str:
    """An advice item's first clause: what it found."""
    cut = min((k for k in (text.find(": "), text.find(". ")) if k > 0), default=len(text))
    if " " not in text[:cut]:  # "dense: every kernel weight ...": a layer's name, then what was found
        rest = _gist(text[cut + 2 :])
        return f"{text[:cut]}: {rest}" if rest else text[:cut]
    return text[:cut].rstrip(".")


def _generic_remedies(config, stage: str) -> list[tuple[str, str]]:
    raw = config.resolved
    opt = raw["optimizer"]
    lr = opt["learning_rate"]
    changes = []
    if isinstance(lr, (int, float)):
        changes.append((f"optimizer.learning_rate={lr / 10:g}", "a tenth of the learning rate"))
    elif isinstance(lr, dict) and isinstance(lr.get("initial_learning_rate"), (int, float)):
        rate = lr["initial_learning_rate"] / 10
        changes.append((f"optimizer.learning_rate.initial_learning_rate={rate:g}", "a tenth of the learning rate"))
    if all(opt.get(k) is None for k in ("clipnorm", "clipvalue", "global_clipnorm")):
        changes.append(("optimizer.clipnorm=1.0", "clip each gradient's norm"))
    if stage != "update" and raw["training"]["on_nonfinite"] != "skip_batch":
        changes.append(("training.on_nonfinite=skip_batch", "skip such batches, counted"))
    if raw["data"].get("scale") == "none":
        changes.append(("data.scale=standardize", "scale the inputs"))
    return changes


def history_columns(history: list[dict]) -> list[str]:
    if not history:
        return ["epoch"]
    keys = list(history[0])
    order = ["epoch", "loss"]
    order += [
        k
        for k in keys
        if k not in ("epoch", "loss", "data_loss", "penalty", "learning_rate", "time", "flags", "skipped_batches")
        and not k.startswith("val_")
        and not k.startswith("grad_norm.")
    ]
    order += [k for k in keys if k.startswith("val_")]
    order += ["data_loss", "penalty", "learning_rate", "time"]
    order += [k for k in keys if k.startswith("grad_norm.")]
    order += ["skipped_batches", "flags"]
    return [k for k in order if k in keys]
