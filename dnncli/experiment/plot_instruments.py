"""The instruments ``dnn plot`` draws beyond the norms: the gradient noise scale over the run (a panel of the main
figure) and, with ``--activations``, each layer's activations over the recorded steps as one heat map (fastai's
"colorful dimension"), with the share at 0 (relu) or near a bound (sigmoid, tanh) beside it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dnncli.diagnostics import histograms
from dnncli.errors import DnnError

ACTIVATIONS_LABEL = "activations heat map"  # each heat map axes' label, which the tests look the axes up by
ROW_INCHES = 1.3  # one layer's row of the activations figure


def run_batch_size(run_dir: Path) -> int | None:
    """The batch size a run trained with (None for full batches, or a config that cannot be read)."""
    from dnncli.experiment import config as config_mod

    try:
        t = config_mod.load(Path(run_dir) / "config.yaml", check_paths=False)["training"]
    except DnnError:
        return None
    return {"stochastic": 1, "batch": None}.get(t["batching"], t["batch_size"])


def draw_noise_scale(ax, by_epoch: dict[int, float], batch: int | None) -> None:
    """B_simple by epoch on a log scale, with the run's batch size for reference: a batch far below the line takes
    noisy steps, far above it spends samples for little gain."""
    from matplotlib.ticker import MaxNLocator

    shown = {e: v for e, v in by_epoch.items() if math.isfinite(v) and v > 0}
    ax.plot(list(shown), list(shown.values()), "o-", label="B_simple (epoch)")
    if batch is not None:
        ax.axhline(batch, ls="--", color="C3", label=f"batch size {batch}")
    unbounded = [e for e, v in by_epoch.items() if math.isinf(v)]
    if unbounded:  # the summed signal was not positive: the gradient within its own noise, no point to draw
        ax.plot([], [], " ", label=f"unbounded in {len(unbounded)} epoch(s)")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_title("gradient noise scale")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")


# --activations ---------------------------------------------------------------------------------------
def plot_activations(run_dir, out: Path) -> Path:
    """Write a run's activation heat maps, a row per watched layer, as a PNG (atomically).

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by ``dnn train``.
    out : Path
        The PNG to write.

    Returns
    -------
    Path
        ``out``.
    """
    from dnncli.experiment.plot import save_png

    return save_png(activations_figure(Path(run_dir)), out)


def _layers(run_dir: Path) -> list:
    """The run's watched layers (index, name, activation), from its config."""
    from dnncli.diagnostics.monitor import watched_layers
    from dnncli.experiment import config as config_mod

    config = config_mod.load(run_dir / "config.yaml", check_paths=False)
    return [w for w, _, _ in watched_layers(config.build_model())]


def _series(records: list[dict], index: int) -> tuple[list[int], np.ndarray, list[float]]:
    """(steps, counts of shape (BINS, steps), saturated fractions) of one layer's records that hold a histogram."""
    steps, columns, saturated = [], [], []
    for r in records:
        if r["layer_index"] != index:
            continue
        counts = histograms.decode(r.get("act_hist"))
        if counts is not None:
            steps.append(r["step"])
            columns.append(counts)
            saturated.append(r.get("saturated_fraction", math.nan))
    return steps, np.array(columns).T if columns else np.zeros((histograms.BINS, 0)), saturated


def activations_figure(run_dir: Path):
    """The figure: per layer, a heat map of its activations' histogram by recorded step (log colour) and the share
    at 0 (relu), near a bound (sigmoid, tanh, softmax), or at the range's edges (any other) beside it."""
    from dnncli.experiment.plot import _matplotlib
    from dnncli.experiment.rundir import read_step_records

    plt, _ = _matplotlib()
    records = read_step_records(run_dir / "gradients.csv")
    layers = [(w, *_series(records, w.index)) for w in _layers(run_dir)]
    layers = [item for item in layers if item[1]]
    if not layers:
        raise DnnError(
            f"{run_dir}: gradients.csv holds no activation histograms (act_hist): the run was trained before they"
            " were recorded, or has no record yet; train it again to plot them."
        )
    fig, axes = plt.subplots(
        len(layers),
        2,
        figsize=(11, ROW_INCHES * len(layers) + 1.2),
        gridspec_kw={"width_ratios": [4, 1]},
        squeeze=False,
        layout="constrained",
    )
    for (w, steps, counts, saturated), (heat, share) in zip(layers, axes):
        _heat_map(fig, heat, w, steps, counts)
        _share(share, w, steps, counts, saturated)
    for ax in axes[-1]:
        ax.set_xlabel("step")
    fig.suptitle(f"{run_dir}: activations by recorded step (log colour; values past the range in its edge bins)")
    return fig


def _step_edges(steps: list[int]) -> np.ndarray:
    s = np.asarray(steps, dtype=float)
    if len(s) == 1:
        return np.array([s[0] - 0.5, s[0] + 0.5])
    mid = (s[1:] + s[:-1]) / 2
    return np.concatenate([[s[0] - (mid[0] - s[0])], mid, [s[-1] + (s[-1] - mid[-1])]])


def _heat_map(fig, ax, w, steps: list[int], counts: np.ndarray) -> None:
    edges, zero_bin = histograms.bins(w.activation)
    ax.set_label(ACTIVATIONS_LABEL)
    x = _step_edges(steps)
    # an image resampled in data space, so that a thousand steps in a few hundred pixels blend into colours of the
    # scale (a mesh's cell edges blend into colours that are not); the records are evenly spaced, every K steps
    mesh = ax.imshow(
        np.log1p(counts),
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(x[0], x[-1], 0, histograms.BINS),
        interpolation="antialiased",
    )
    low, high = edges[0], edges[-1]
    values = [low, (low + high) / 2, high]
    if zero_bin:  # the first row is exactly 0 (labelled in its middle), the others span (0, TOP]
        ticks = [0.5] + [1 + v / high * (histograms.BINS - 1) for v in values[1:]]
    else:
        ticks = [(v - low) / (high - low) * histograms.BINS for v in values]
    ax.set_yticks(ticks, [f"{v:g}" for v in values], fontsize="small")
    ax.set_ylabel("value", fontsize="small")
    ax.set_title(f"{w.index}: {w.name} ({w.activation})", fontsize="small", loc="left")
    fig.colorbar(mesh, ax=ax, pad=0.01, aspect=10, label="log(1 + count)")


def _share(ax, w, steps: list[int], counts: np.ndarray, saturated: list[float]) -> None:
    total = np.maximum(counts.sum(axis=0), 1)
    _, zero_bin = histograms.bins(w.activation)
    if zero_bin:
        values, what = counts[0] / total, "share at 0"
    elif w.activation in histograms.BOUNDED and np.isfinite(saturated).any():
        values, what = np.asarray(saturated, dtype=float), "share within 1% of a bound"
    elif w.activation in histograms.BOUNDED:  # the output layer: the monitor measures no saturation there
        values, what = (counts[0] + counts[-1]) / total, "share in the bins at a bound"
    else:
        values, what = (counts[0] + counts[-1]) / total, "share at the range's edges"
    ax.plot(steps, values, color="C3")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(what, fontsize="small", loc="left")
    ax.grid(alpha=0.3)
