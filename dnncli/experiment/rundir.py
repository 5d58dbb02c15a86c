"""Run directories: where a run's files go, and the files a run appends or reads back.

A run directory holds the resolved ``config.yaml``, ``history.csv``,
``gradients.csv``, ``preprocessing.npz``, ``checkpoint.npz`` (everything a
resume needs) and, once training ends, ``model.npz``. Every file is written to
a temporary name and renamed (``gradients.csv`` is appended, an epoch at a
time), so an interruption never leaves a half-written file, and nothing the
user had is overwritten.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import socket
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from dnncli.diagnostics.monitor import STEP_FIELDS
from dnncli.errors import DnnError
from dnncli.files import append_text, atomic_write, atomic_write_text, storage_error

RUN_FILES = ("config.yaml", "history.csv", "gradients.csv", "preprocessing.npz", "checkpoint.npz", "model.npz")


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

    def acquire(self, what: str) -> RunLock:
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
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()} (since {datetime.now():%Y-%m-%d %H:%M:%S})\n")
        f.flush()
        self.file = f
        return self

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None


def new_run_dir(name: str, out: str | None, runs_root: str = "runs") -> tuple[Path, RunLock]:
    """Create and lock the run directory: ``--out DIR`` (refused if it holds a run or another run holds it)
    or ``runs/<name>-<time>`` (a new name, ``-2``, ``-3``, ... for runs started within the same second)."""
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise DnnError(f"--out {path}: exists and is not a directory.")
        path.mkdir(parents=True, exist_ok=True)
        lock = RunLock(path).acquire("--out")
        held = [f for f in RUN_FILES if (path / f).exists()]
        if held:
            lock.release()
            raise DnnError(
                f"--out {path}: holds a run already ({held[0]}); resume it with --resume {path},"
                " or choose another directory."
            )
        return path, lock
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir()  # atomic: of two runs started together, one gets the name, the other the next
            return path, RunLock(path).acquire("--out")
        except FileExistsError:
            continue
    raise DnnError(f"{root}: cannot find a free run directory name for {name}-{stamp}.")


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
        """Keep the records up to ``step`` (rewriting the file only if anything goes); return them."""
        if not self.path.exists():
            self.create()
            return []
        text = self.path.read_text()
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        records = _parse_step_records(complete)
        kept = [r for r in records if r["step"] <= step]
        if len(kept) != len(records) or complete != text:
            atomic_write_text(self.path, csv_text(kept, self.fields))
        return kept


def read_step_records(path: Path) -> list[dict]:
    """The monitor's rows back from ``gradients.csv``, numbers as numbers."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    return _parse_step_records(text if text.endswith("\n") else text[: text.rfind("\n") + 1])


def _parse_step_records(text: str) -> list[dict]:
    ints = ("epoch", "step", "layer_index", "samples")
    return [
        {k: v if k == "layer" else int(v) if k in ints else float(v) if v else math.nan for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    ]


def skipped_events(run_dir: Path) -> list[dict]:
    """The batches a run skipped as non-finite (``on_nonfinite: skip_batch``), from its checkpoint."""
    try:
        with np.load(Path(run_dir) / "checkpoint.npz", allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return []
    return meta.get("callbacks", {}).get("monitor", {}).get("events", [])


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
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
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
    return text[:cut].rstrip(".")


def _generic_remedies(config, stage: str) -> list[tuple[str, str]]:
    raw = config.raw
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
