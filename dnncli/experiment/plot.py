"""``dnn plot``: a run's loss and metric curves, and a log-scale heat map of its gradient norms, as a PNG."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError
from dnncli.experiment.rundir import read_step_records
from dnncli.files import atomic_write


def plot_run(run_dir, out: Path) -> Path:
    """Loss and metric curves, and a log-scale heat map of gradient norms (layers by epochs), as a PNG."""
    plt, LogNorm = _matplotlib()
    run_dir = Path(run_dir)
    history = _history(run_dir)
    epochs = [int(r["epoch"]) for r in history]
    skip = {"epoch", "data_loss", "penalty", "learning_rate", "time", "flags", "skipped_batches"}
    curves = [k for k in history[0] if k not in skip and not k.startswith("val_") and not k.startswith("grad_norm.")]
    fig, axes = plt.subplots(1, len(curves) + 1, figsize=(5 * (len(curves) + 1), 4), squeeze=False)
    for ax, key in zip(axes[0], curves):
        _curve(ax, history, epochs, key)
    layers, grid = _gradient_grid(read_step_records(run_dir / "gradients.csv"), epochs)
    if layers:
        _heat_map(fig, axes[0][-1], layers, grid, epochs, LogNorm)
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, dpi=110, format="png"), binary=True)
    plt.close(fig)
    return out


INSTALL = "pip install '.[plot]' in a checkout of dnncli, or pip install matplotlib"


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm
    except ImportError:
        raise DnnError(f"Plotting needs matplotlib: {INSTALL}.") from None
    return plt, LogNorm


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.csv"
    if not path.exists():
        raise DnnError(f"{run_dir}: no history.csv (not a run directory, or no epoch finished yet).")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _curve(ax, history: list[dict], epochs: list[int], key: str) -> None:
    ax.plot(epochs, [float(r[key]) for r in history], "o-", label=f"training {key}")
    if f"val_{key}" in history[0]:
        ax.plot(epochs, [float(r[f"val_{key}"]) for r in history], "s--", label=f"validation {key}")
    ax.set_xlabel("epoch")
    ax.set_title(key)
    ax.grid(alpha=0.3)
    ax.legend()


def _gradient_grid(records: list[dict], epochs: list[int]) -> tuple[list[tuple], np.ndarray]:
    """((layer index, name) per row, mean kernel gradient norm by layer and epoch), in one pass over the records."""
    layers = sorted({(r["layer_index"], r["layer"]) for r in records})
    row = {index: k for k, (index, _) in enumerate(layers)}
    col = {e: k for k, e in enumerate(epochs)}
    sums = np.zeros((len(layers), len(epochs)))
    counts = np.zeros_like(sums)
    for r in records:
        if r["epoch"] in col and np.isfinite(r["grad_norm"]):
            sums[row[r["layer_index"]], col[r["epoch"]]] += r["grad_norm"]
            counts[row[r["layer_index"]], col[r["epoch"]]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return layers, np.where(counts > 0, sums / counts, np.nan)


def _heat_map(fig, ax, layers, grid, epochs, LogNorm) -> None:
    positive = grid[np.isfinite(grid) & (grid > 0)]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
    image = ax.imshow(
        np.where(grid > 0, grid, np.nan),
        aspect="auto",
        cmap="viridis",
        norm=norm,
        extent=(epochs[0] - 0.5, epochs[-1] + 0.5, len(layers) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(layers)), [f"{i}: {name}" for i, name in layers])
    ax.set_xlabel("epoch")
    ax.set_title("kernel gradient norm (log scale)")
    fig.colorbar(image, ax=ax)
