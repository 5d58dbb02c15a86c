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
from dnncli.experiment.weights import architecture_differences
from dnncli.files import atomic_savez, check_readable
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
        """Read a checkpoint; a damaged or truncated file is one clear error naming it: unreadable, metadata that
        is not the mapping ``capture`` writes (a list, a key missing, a text epoch), arrays that are not numbers."""
        path = Path(path)
        check_readable(path)  # a FIFO would never end
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise DnnError(f"{path}: not a readable checkpoint ({err}).") from None
        problem = _meta_problem(meta) or next(
            (f"its array {k!r} holds {a.dtype}, not numbers" for k, a in arrays.items() if a.dtype.kind not in "biuf"),
            None,
        )
        if problem:
            raise DnnError(f"{path}: not a readable checkpoint ({problem}); {DAMAGED}")
        return cls(meta, arrays)

    @staticmethod
    def peek(path) -> dict | None:
        """The metadata alone (step, epoch, status, the callbacks' state), without the weights; None where the file
        is missing or cannot be read: for readers that can do without it (a resume names the damage)."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return None
        return meta if isinstance(meta, dict) else None

    @property
    def events(self) -> list:
        """The monitor's recorded events (batches skipped as non-finite), as the checkpoint keeps them."""
        return _events(self.meta)

    def restore(self, trainer, callbacks: dict, source: str, config_path=None) -> None:
        """Put the state back into ``trainer`` (model, optimizer, generators, position) and the ``callbacks``.

        State for another config (``config_path``: the run's) or state that cannot be set is one line naming
        ``source``."""
        config = config_path or "the config"
        differences = architecture_differences(trainer.model, _under(self.arrays, "weights."), str(source))
        if differences:
            more = f"; and {len(differences) - 3} more" if len(differences) > 3 else ""
            raise DnnError(f"{source} does not match {config}: {'; '.join(differences[:3])}{more}.")
        try:
            self._restore(trainer, callbacks, source)
        except KeyError as err:
            raise DnnError(f"{source} does not match {config} (no state for {err}).") from None
        except DnnError as err:  # the optimizer's: another optimizer, or its state for other layers
            raise DnnError(f"{source} does not match {config}: {err.message}") from None
        except (TypeError, ValueError, AttributeError, IndexError) as err:
            raise DnnError(f"{source}: not a readable checkpoint ({err}); {DAMAGED}") from None

    def _restore(self, trainer, callbacks: dict, source: str) -> None:
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
        _set_state(trainer.rng, meta["shuffle_rng"], "'shuffle_rng'")
        for k, g in model.generators().items():
            _set_state(g, meta["generators"][k], f"generator {k!r}")
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


DAMAGED = "the file is damaged: put back a copy of it, or train anew."

# what ``capture`` writes, key by key: the types a readable checkpoint's metadata holds
_META_TYPES = {
    "epoch": (int,),
    "step": (int,),
    "history": (list,),
    "shuffle_rng": (dict,),
    "generators": (dict,),
    "learning_rate": (int, float, type(None)),
    "position": (dict, type(None)),
    "callbacks": (dict,),
}


def _meta_problem(meta) -> str | None:
    """What is wrong with a checkpoint's metadata, or None: the mapping ``capture`` writes, with every key."""
    if not isinstance(meta, dict):
        return f"its metadata is {_kind(meta)}, not a mapping"
    for key, types in _META_TYPES.items():
        if key not in meta:
            return f"its metadata has no {key!r}"
        value = meta[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"its {key!r} is {_kind(value)} {json.dumps(value)[:40]}"
        if isinstance(value, int) and int in types and value < 0:
            return f"its {key!r} is negative ({value})"
    if not all(isinstance(row, dict) for row in meta["history"]):
        return "its history holds something other than rows"
    return None


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true or false", type(None): "null"}.get(
        type(value), "a number"
    )


def _set_state(generator, state, what: str) -> None:
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as err:
        raise TypeError(f"its {what} is not a random generator's state: {err}") from None


def _under(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _events(meta) -> list:
    node = meta
    for key in ("callbacks", "monitor", "events"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, list) else []


def events_of(path) -> list:
    """The monitor's events a checkpoint file keeps; none from a file that cannot be read."""
    meta = Checkpoint.peek(path)
    return [] if meta is None else _events(meta)
