"""``checkpoint.npz``: everything a resume needs to continue bit for bit.

What it holds: the model's weights (moving statistics included) and the
optimizer's state and learning rate; the epoch and step; the position within an
unfinished epoch (its permutation and running sums); every random generator's
state (shuffling, dropout); the history; each stateful callback's state; and
the run's status (running, completed, early_stopped).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError
from dnncli.files import atomic_savez
from dnncli.train.trainer import EpochPosition, NonFiniteLoss


class Checkpoint:
    """A snapshot of a run's training state: ``capture`` it, ``save`` it, ``load`` it, ``restore`` it."""

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray]):
        self.meta = meta
        self.arrays = arrays

    @property
    def status(self) -> str:
        return self.meta.get("status", "running")

    @property
    def step(self) -> int:
        return self.meta["step"]

    @property
    def history(self) -> list[dict]:
        return self.meta["history"]

    @property
    def config(self) -> dict | None:
        """The resolved config the run was training under (None in checkpoints written before it was kept)."""
        return self.meta.get("config")

    @classmethod
    def capture(cls, trainer, history: list[dict], callbacks: dict, status: str, keep_learning_rate: bool, config=None):
        """The state of ``trainer`` (its model and optimizer), the history and the stateful ``callbacks`` by name.

        ``keep_learning_rate``: the learning rate is a number (not a schedule, which the step count drives).
        """
        model = trainer.model
        arrays = {f"weights.{k}": v for k, v in model.weights_dict().items()}
        arrays.update({f"optimizer.{k}": v for k, v in trainer.optimizer.get_state().items()})
        meta = {
            "status": status,
            "config": config,
            "epoch": trainer.epoch,
            "step": trainer.step,
            "history": history,
            "shuffle_rng": trainer.rng.bit_generator.state,
            "generators": {k: g.bit_generator.state for k, g in model.generators().items()},
            "learning_rate": trainer.optimizer.learning_rate if keep_learning_rate else None,
            "position": None,
            "callbacks": {},
            # batches skipped as non-finite: each epoch's count is logged at its end
            "skipped": [[e.epoch, e.step, e.batch_start, e.batch_size, e.stage, e.layer] for e in trainer.skipped],
        }
        pos = trainer.position
        if pos is not None:
            meta["position"] = {
                "next_start": pos.next_start,
                "data_sum": pos.data_sum,
                "penalty_sum": pos.penalty_sum,
                "skipped_samples": pos.skipped_samples,
                "shuffled": pos.perm is not None,
            }
            if pos.perm is not None:
                arrays["position.perm"] = pos.perm
        for name, cb in callbacks.items():
            scalars, cb_arrays = cb.get_state()
            meta["callbacks"][name] = scalars
            arrays.update({f"callback.{name}.{k}": v for k, v in cb_arrays.items()})
        return cls(meta, arrays)

    def save(self, path) -> None:
        atomic_savez(path, {**self.arrays, "meta": np.array(json.dumps(self.meta))})

    @classmethod
    def load(cls, path) -> Checkpoint:
        """Read a checkpoint; a damaged or truncated file is one clear error naming it."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise DnnError(f"{path}: not a readable checkpoint ({err}).") from None
        return cls(meta, arrays)

    def restore(self, trainer, callbacks: dict, source: str) -> None:
        """Put the state back into ``trainer`` (model, optimizer, generators, position) and the ``callbacks``."""
        model, meta, arrays = trainer.model, self.meta, self.arrays
        model.set_weights_dict(_under(arrays, "weights."), source=source)
        variables, _ = trainer._variables()
        trainer.optimizer.set_state(_under(arrays, "optimizer."), variables)
        if meta["learning_rate"] is not None:
            trainer.optimizer.learning_rate = meta["learning_rate"]
        trainer.epoch, trainer.step = meta["epoch"], meta["step"]
        trainer.skipped = [
            NonFiniteLoss(epoch, step, start, size, float("nan"), stage, layer)
            for epoch, step, start, size, stage, layer in meta.get("skipped", [])
        ]
        trainer.rng.bit_generator.state = meta["shuffle_rng"]
        for k, g in model.generators().items():
            g.bit_generator.state = meta["generators"][k]
        pos = meta["position"]
        if pos is not None:
            perm = arrays.get("position.perm") if pos["shuffled"] else None
            trainer.position = EpochPosition(
                perm, pos["next_start"], pos["data_sum"], pos["penalty_sum"], pos["skipped_samples"]
            )
        for name, cb in callbacks.items():
            if name not in meta["callbacks"] and getattr(cb, "optional_state", False):
                continue  # a checkpoint written before this callback existed: it starts afresh
            cb.set_state(meta["callbacks"][name], _under(arrays, f"callback.{name}."))


def _under(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
