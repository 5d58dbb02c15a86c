"""What a training run keeps in its directory as it trains: ``history.csv``, the step logs and ``checkpoint.npz``.

A ``RunState`` is built knowing the run directory and the callbacks whose state the checkpoint holds; each write
takes the trainer whose state it saves, which the callback that asks for the write is handed by the trainer.
"""

from __future__ import annotations

from pathlib import Path

from dnncli.experiment.checkpoint import Checkpoint
from dnncli.experiment.rundir import LOSS_FIELDS, StepLog, csv_text, history_columns
from dnncli.files import atomic_write_text


class RunState:
    """A run's history and its files: the rows so far, ``history.csv``, ``gradients.csv`` (the gradient monitor's
    records), ``losses.csv`` (each step's loss) and ``checkpoint.npz`` (everything a resume needs).

    ``stateful``: the callbacks whose state the checkpoint holds, by name; ``monitor`` and ``losses`` are among
    them, and give the step logs their records.
    """

    def __init__(self, run_dir: Path, config, monitor, losses, stateful: dict):
        self.run_dir = Path(run_dir)
        self.config = config
        self.monitor, self.losses = monitor, losses
        self.stateful = stateful
        self.history: list[dict] = []
        self.steps = StepLog(self.run_dir / "gradients.csv")
        self.step_losses = StepLog(self.run_dir / "losses.csv", LOSS_FIELDS)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.npz"

    def create(self, trainer) -> None:
        """A new run's empty step logs and its epoch-0 checkpoint: resumable, with a finite state, from the start."""
        self.steps.create()
        self.step_losses.create()
        self.save_checkpoint(trainer)

    def end_epoch(self, trainer, row: dict) -> None:
        """An epoch's row: into the history, and every file, the checkpoint last (which counts the epoch done)."""
        self.history.append(row)
        self.write(trainer)

    def write(self, trainer, history: bool = True) -> None:
        """Write ``history.csv`` (unless ``history`` is false: an epoch cut short has no row), the step records
        so far and the checkpoint."""
        if history:
            atomic_write_text(self.run_dir / "history.csv", csv_text(self.history, history_columns(self.history)))
        self.write_steps()
        self.save_checkpoint(trainer)

    def write_steps(self) -> None:
        """Append the step records taken since the last write to ``gradients.csv`` and ``losses.csv``."""
        self.steps.append(self.monitor.take_records())
        self.step_losses.append(self.losses.take())

    def save_checkpoint(self, trainer, status: str = "running") -> None:
        schedule = isinstance(self.config["optimizer"]["learning_rate"], dict)
        checkpoint = Checkpoint.capture(
            trainer, self.history, self.stateful, status, not schedule, self.config.resolved
        )
        checkpoint.save(self.checkpoint_path)

    def load_checkpoint(self, trainer) -> str:
        """Put the checkpoint's state back into ``trainer`` and the callbacks, cut the step logs back to its step;
        return its status."""
        checkpoint = Checkpoint.load(self.checkpoint_path)
        checkpoint.restore(trainer, self.stateful, str(self.checkpoint_path), self.run_dir / "config.yaml")
        self.history = checkpoint.history
        losses = {r["step"]: r["loss"] for r in self.step_losses.cut_to(checkpoint.step)}
        self.monitor.resume(self.steps.cut_to(checkpoint.step), losses)
        return checkpoint.status
