"""A run stopped on non-finite values: where the first NaN or infinity appeared, the batch's samples saved to
``nonfinite_batch.npz``, and what to change, causes first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnncli.experiment.rundir import nonfinite_remedies
from dnncli.files import atomic_savez

STAGES = {
    "update": "the weights (after the previous update)",
    "loss": "the loss",
    "moving statistics": "the batch statistics (kept out of the moving statistics)",
}


def nonfinite_report(err, run_dir: Path, config, data, trainer, monitor) -> str:
    """Say where the first NaN or infinity appeared (``err``, the trainer's ``NonFiniteLoss``), and save the batch's
    sample indices in ``RUN_DIR/nonfinite_batch.npz``."""
    run_dir = Path(run_dir)
    pos = trainer.position
    order = pos.perm if pos is not None and pos.perm is not None else np.arange(len(data.x_train))
    indices = order[err.batch_start : err.batch_start + err.batch_size]
    atomic_savez(
        run_dir / "nonfinite_batch.npz",
        {
            "indices": indices,
            "epoch": np.array(err.epoch + 1),
            "step": np.array(err.step + 1),
            "stage": np.array(err.stage),
            "layer": np.array(-1 if err.layer is None else err.layer),
        },
    )
    where = "" if err.layer is None else f" of layer {err.layer} ({trainer.model.layers[err.layer].name})"
    stage = STAGES.get(err.stage, err.stage)
    last = err.batch_start + err.batch_size - 1
    batch = f"sample {last}" if err.batch_size == 1 else f"samples {err.batch_start}..{last}"
    every = (
        f"Every batch of epoch {err.epoch + 1} was non-finite and skipped (training.on_nonfinite: skip_batch):"
        " nothing was learned, and there is no loss to log. "
        if err.whole_epoch
        else ""
    )
    return (
        f"{every}Non-finite values first appeared in {stage}{where}, at epoch {err.epoch + 1}, step {err.step + 1}"
        f" (the batch of {batch} in that epoch's order;"
        f" its indices in the training split are in {run_dir / 'nonfinite_batch.npz'}). Training stopped;"
        f" {run_dir / 'checkpoint.npz'} keeps the last finite state.\n"
        + nonfinite_remedies(config, run_dir, err.stage, _advice(config, data, trainer.loss, monitor))
    )


def _advice(config, data, loss, monitor) -> list[dict]:
    """The diagnosis's advice on the flags raised so far (a stopped run's), causes first."""
    from dnncli.diagnostics.advice import DataStats, advise

    stats = DataStats.of(config["data"].get("scale", "none"), loss, data.x_train, data.y_train)
    return [a.to_dict() for a in advise(config.advice_subject(), monitor.tracker.raised(), monitor.layers, stats)]
