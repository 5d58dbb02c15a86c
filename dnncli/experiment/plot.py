"""``dnn plot``: a run's loss and metric curves, the gradient noise scale by epoch, and a log-scale heat map of its
gradient norms, as a PNG (``plot_instruments.py`` draws the noise scale, and the activations of ``--activations``).

The heat map has one row per watched dense layer and one column per epoch. Besides the colour scale it shows
three things a log scale cannot: cells whose norm is exactly 0 (a colour of their own), cells with no record
(hatched grey), and where each flag the run raised began (a marker per flag at its onset epoch).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dnncli.diagnostics import noise
from dnncli.diagnostics.inspection_report import InspectionReport
from dnncli.errors import DnnError
from dnncli.experiment.plot_instruments import draw_noise_scale, run_batch_size
from dnncli.experiment.rundir import read_step_records
from dnncli.experiment.runfiles import read_history
from dnncli.files import atomic_write

INSTALL = "pip install '.[plot]' in a checkout of dnncli, or pip install matplotlib"

DPI = 110
HEAT_MAP_LABEL = "gradient heat map"  # the heat map axes' label, which the tests look the axes up by
NOISE_LABEL = "noise scale"  # and the noise scale's
ZERO_COLOUR = "#e8298a"  # magenta: far from every viridis colour, so a zero never reads as a small norm
MISSING_COLOUR = "#d9d9d9"
MISSING_HATCH_COLOUR = "#8c8c8c"
# One shape per flag, all white with a black edge: shapes stay readable on every viridis colour and on the
# zero colour, where coloured markers would be confused with the scale.
FLAG_MARKERS = {"vanishing": "v", "exploding": "^", "collapsed": "s", "dead": "X", "saturated": "D", "nonfinite": "*"}
SPARE_MARKERS = ("o", "P", "h", "p", "<", ">")  # for flags newer than this table, each still its own shape
ROW_INCHES = 0.17  # one tick label in the "small" font with some air: every label fits up to ~65 layers
LABEL_GAP_PX = 2  # the least gap between two layer labels, so that labels that fit also read apart


def plot_run(run_dir, out: Path) -> Path:
    """Write a run's curves and gradient heat map as a PNG.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by ``dnn train``.
    out : Path
        The PNG to write, atomically (an interruption never leaves half a file).

    Returns
    -------
    Path
        ``out``.
    """
    return save_png(_figure(Path(run_dir)), out)


def save_png(fig, out: Path) -> Path:
    """Write ``fig`` to ``out`` atomically (an interruption never leaves half a file), then free it."""
    plt, _ = _matplotlib()
    try:
        atomic_write(out, lambda f: fig.savefig(f, dpi=DPI, format="png"), binary=True)
    finally:
        plt.close(fig)
    return out


def _matplotlib():
    """Matplotlib's pyplot and LogNorm, on the Agg backend (no display needed), or a one-line error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm
    except ImportError:
        raise DnnError(f"Plotting needs matplotlib: {INSTALL}.") from None
    return plt, LogNorm


def _figure(run_dir: Path):
    """The whole figure: the curves in the top row and the heat map under them, across the full width.

    The heat map gets a row of its own so that its height can grow with the number of layers without
    stretching the curves.

    Parameters
    ----------
    run_dir : Path
        The run directory.

    Returns
    -------
    matplotlib.figure.Figure
        The drawn figure (its layout done), still open: the caller closes it.
    """
    plt, _ = _matplotlib()
    history = _history(run_dir)
    epochs = [int(r["epoch"]) for r in history]
    skip = {"epoch", "data_loss", "penalty", "learning_rate", "time", "flags", "skipped_batches"}
    curves = [k for k in history[0] if k not in skip and not k.startswith("val_") and not k.startswith("grad_norm.")]
    records = read_step_records(run_dir / "gradients.csv")
    noise_scale = noise.by_epoch(records)  # empty for a run recorded before the noise scale was
    report, note = _inspection(run_dir) if records else (None, None)
    names = {r["layer_index"]: r["layer"] for r in records}
    if report is not None:
        # The rows are the layers the monitor watches, as inspect-gradients lists them; a layer it names but
        # that has no record yet still gets its (empty) row.
        names |= {layer.index: layer.name for layer in report.layers}
    layers = sorted(names.items())
    heat_inches = min(max(ROW_INCHES * len(layers) + 1.0, 2.6), 12.0) if layers else 0.0
    curve_inches = 3.4
    panels = len(curves) + bool(noise_scale)
    fig = plt.figure(figsize=(max(10.0, 5.0 * panels), curve_inches + heat_inches + 1.2), dpi=DPI, layout="constrained")
    grid_spec = fig.add_gridspec(
        2 if layers else 1, panels, height_ratios=[curve_inches, heat_inches][: 1 + bool(layers)]
    )
    for k, key in enumerate(curves):
        _curve(fig.add_subplot(grid_spec[0, k]), history, epochs, key)
    if noise_scale:
        ax = fig.add_subplot(grid_spec[0, len(curves)], label=NOISE_LABEL)
        draw_noise_scale(ax, noise_scale, run_batch_size(run_dir))
    if layers:
        ax = fig.add_subplot(grid_spec[1, :], label=HEAT_MAP_LABEL)
        first = epochs[0]
        grid = _gradient_grid(records, layers, range(first, epochs[-1] + 1))
        onsets = _onsets(report, layers, first, epochs[-1])
        _heat_map(fig, ax, layers, grid, first, onsets, heat_inches, note)
    fig.suptitle(str(run_dir))
    if layers:
        _fit_labels(fig, ax, [f"{i}: {name}" for i, name in layers])
    return fig


def _history(run_dir: Path) -> list[dict]:
    return read_history(run_dir)  # numbers as numbers; damaged, one line naming it; a spreadsheet's BOM and CRLF read


def _curve(ax, history: list[dict], epochs: list[int], key: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.plot(epochs, [float(r[key]) for r in history], "o-", label=f"training {key}")
    if f"val_{key}" in history[0]:
        ax.plot(epochs, [float(r[f"val_{key}"]) for r in history], "s--", label=f"validation {key}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at epoch 1.5
    ax.set_xlabel("epoch")
    ax.set_title(key)
    ax.grid(alpha=0.3)
    ax.legend()


def _inspection(run_dir: Path) -> tuple[InspectionReport | None, str | None]:
    """The run's flags as ``inspect-gradients`` finds them, or None and why they cannot be had.

    A run whose flags cannot be replayed (its config gone or no longer valid) still has curves and norms
    worth drawing, so that is a note on the plot rather than an error.
    """
    from dnncli.experiment.inspection import inspect_run

    try:
        return inspect_run(run_dir), None
    except DnnError as err:
        return None, f"flag onsets not shown: {err.message}"


def _gradient_grid(records: list[dict], layers: list[tuple], epochs: range) -> np.ndarray:
    """Mean kernel gradient norm by layer (rows, in ``layers`` order) and epoch; NaN where nothing was recorded.

    An epoch's mean is exactly 0 only when every record of it is 0, which is what the zero colour means.
    Non-finite norms are left out of the mean: the ``nonfinite`` flag marks them.
    """
    row = {index: k for k, (index, _) in enumerate(layers)}
    sums = np.zeros((len(layers), len(epochs)))
    counts = np.zeros_like(sums)
    for r in records:
        if r["epoch"] in epochs and r["layer_index"] in row and np.isfinite(r["grad_norm"]):
            sums[row[r["layer_index"]], r["epoch"] - epochs.start] += r["grad_norm"]
            counts[row[r["layer_index"]], r["epoch"] - epochs.start] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _onsets(
    report: InspectionReport | None, layers: list[tuple], first: int, last: int
) -> dict[str, list[tuple[float, int]]]:
    """(x, heat map row) of each flag's onset, by flag, in the order of ``FLAG_MARKERS``.

    x is the onset epoch, moved sideways within its cell when several flags begin in the same cell (dead and
    collapsed often do), so that no marker hides another.
    """
    if report is None:
        return {}
    row = {index: k for k, (index, _) in enumerate(layers)}
    order = list(FLAG_MARKERS)
    cells: dict[tuple[int, int], list[str]] = {}
    for layer in report.layers:
        for info in layer.flag_info:
            epoch = info.onset_epoch
            if epoch is not None and first <= epoch <= last and layer.index in row:
                cells.setdefault((int(epoch), row[layer.index]), []).append(info.flag)
    found: dict[str, list[tuple[float, int]]] = {}
    for (epoch, r), flags in cells.items():
        step = min(0.3, 0.8 / len(flags))
        for k, flag in enumerate(flags):
            found.setdefault(flag, []).append((epoch + (k - (len(flags) - 1) / 2) * step, r))
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def _heat_map(fig, ax, layers, grid, first, onsets, heat_inches, note) -> None:
    """Draw the norms (log colour scale), the exact zeros, the missing cells and the flag onsets, with a legend."""
    from matplotlib.colors import ListedColormap, LogNorm
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    extent = (first - 0.5, first + grid.shape[1] - 0.5, len(layers) - 0.5, -0.5)
    # Missing cells are transparent in both images, so the axes background shows through them: a hatched
    # grey that no colour of the scale resembles.
    ax.set_facecolor(MISSING_COLOUR)
    ax.patch.set_hatch("///")
    ax.patch.set_edgecolor(MISSING_HATCH_COLOUR)
    positive = grid[np.isfinite(grid) & (grid > 0)]
    cmap = _viridis().with_extremes(bad=(0, 0, 0, 0))
    image = None
    if positive.size:
        low, high = positive.min(), positive.max()
        if low == high:  # one value: LogNorm needs a range to place it in
            low, high = low / math.sqrt(10), high * math.sqrt(10)
        image = ax.imshow(
            np.where(grid > 0, grid, np.nan),
            aspect="auto",
            cmap=cmap,
            norm=LogNorm(vmin=low, vmax=high),
            extent=extent,
            interpolation="nearest",  # smoothing would blend a zero row into its neighbours
        )
    zeros = grid == 0
    if zeros.any():
        ax.imshow(
            np.where(zeros, 1.0, np.nan),
            aspect="auto",
            cmap=ListedColormap([ZERO_COLOUR]).with_extremes(bad=(0, 0, 0, 0)),
            vmin=0,
            vmax=1,
            extent=extent,
            interpolation="nearest",
        )
    handles = []
    if zeros.any():
        handles.append(Patch(facecolor=ZERO_COLOUR, label="exactly 0"))
    if np.isnan(grid).any():
        handles.append(Patch(facecolor=MISSING_COLOUR, edgecolor=MISSING_HATCH_COLOUR, hatch="///", label="no record"))
    # Markers sized to the cell, so they stay inside their row at any depth.
    size = max(3.0, min(9.0, 0.7 * 72 * heat_inches / max(len(layers), 1)))
    spare = iter(SPARE_MARKERS)
    for flag, points in onsets.items():
        xs, ys = zip(*points)
        (line,) = ax.plot(
            xs,
            ys,
            linestyle="none",
            marker=FLAG_MARKERS.get(flag) or next(spare, "o"),
            markersize=size,
            markerfacecolor="white",
            markeredgecolor="black",
            markeredgewidth=0.8,
            label=f"onset: {flag}",
        )
        handles.append(line)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    title = "kernel gradient norm by layer and epoch (log scale)"
    ax.set_title(title if note is None else f"{title}\n{_shorten(note, 120)}")
    if image is not None:
        # A fixed width rather than matplotlib's height / 20, which makes a deep network's bar a slab.
        aspect = 20 * max(1.0, heat_inches / 4)
        fig.colorbar(image, ax=ax, pad=0.01, aspect=aspect, label="‖dW‖ (epoch mean)")
    if handles:
        # Below the figure, outside every axes: a legend inside the heat map would hide cells.
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize="small")


def _viridis():
    import matplotlib

    return matplotlib.colormaps["viridis"]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fit_labels(fig, ax, labels: list[str]) -> int:
    """Label the rows, every k-th one when they would not fit, with k as small as the drawn labels allow.

    The test is the rendered labels themselves (their boxes after a draw), not a font-size estimate, so that
    no font, DPI or name length can make them overlap. Every row keeps a tick mark.

    Returns
    -------
    int
        k, the stride between labelled rows.
    """
    n = len(labels)
    ax.set_yticks(range(n), minor=True)
    # A first guess from the axes' height and one label's, then checked (and raised) on the drawn figure.
    ax.set_yticks([0], [labels[0]], fontsize="small")
    fig.canvas.draw()
    label_px = ax.get_yticklabels()[0].get_window_extent().height + LABEL_GAP_PX
    stride = max(1, math.ceil(n * label_px / max(ax.get_window_extent().height, 1.0)))
    while True:
        shown = list(range(0, n, stride))
        ax.set_yticks(shown, [labels[i] for i in shown], fontsize="small")
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_ylabel("layer" if stride == 1 else f"layer (one label every {stride} rows)")
        fig.canvas.draw()
        if stride >= n or not _overlapping(ax.get_yticklabels(), LABEL_GAP_PX):
            return stride
        stride += 1


def _overlapping(texts, gap: float = 0.0) -> bool:
    """Whether any two of the drawn, non-empty ``texts`` are closer than ``gap`` pixels vertically (or overlap)."""
    boxes = sorted(
        (t.get_window_extent() for t in texts if t.get_visible() and t.get_text()),
        key=lambda b: b.y0,
    )
    return any(upper.y0 < lower.y1 + gap for lower, upper in zip(boxes, boxes[1:]))
