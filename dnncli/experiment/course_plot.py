"""``dnn course --plot DIR``: each experiment's evidence as a PNG beside its verdicts.

A sweep gets one panel per measure its comparisons read, every configuration of its grid in its own colour, the
mean over its seeds drawn and their range shaded: the curve of the column a measure is taken from (by epoch), both
curves of a gap (training solid, validation dashed), the final kernels' sizes (weights), the batch loss by step
(jitter), seconds per epoch (time), or the first layer's gradient norm (flags). A config gets ``dnn plot``'s figure.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError
from dnncli.experiment.expect.compare import label
from dnncli.experiment.expect.measures import ZERO
from dnncli.experiment.plot import DPI, _matplotlib, plot_run
from dnncli.experiment.rundir import nonfinite_event, read_step_records
from dnncli.files import atomic_write

FLOOR = 1e-12  # where a gradient of exactly zero is drawn on a log scale


def plot_experiment(result, out: Path) -> Path:
    """Write ``result``'s (an ``ExperimentResult``) figure to ``out``, atomically."""
    if result.check is not None:
        return plot_run(result.out, out)
    plt, _ = _matplotlib()
    verdicts = result.comparisons
    panels: dict[str, list] = {}  # one panel per picture: every flag on one, every weight measure on one
    for v in verdicts:
        panels.setdefault(_panel_key(v.measure), []).append(v)
    keys = list(panels)[:3]
    fig, axes = plt.subplots(1, len(keys), figsize=(max(7.0, 5.2 * len(keys)), 4.4), squeeze=False)
    groups = _groups(result.out)
    for ax, key in zip(axes[0], keys):
        _panel(ax, panels[key][0].measure, groups)
        ax.set_title(
            "\n".join(f"{'holds' if v.passed else 'FAILS'}: {_short(v.claim or v.sentence)}" for v in panels[key]),
            fontsize=8,
        )
    title = textwrap.wrap(f"{result.experiment.name}: {result.experiment.lesson}", 50 * len(keys) + 40)
    fig.suptitle("\n".join(title[:2]), fontsize=9)
    fig.tight_layout()
    try:
        atomic_write(out, lambda f: fig.savefig(f, dpi=DPI, format="png"), binary=True)
    finally:
        plt.close(fig)
    return Path(out)


def _panel_key(measure: str) -> str:
    family = measure.partition(".")[0]
    return family if family in ("flags", "weights", "jitter") else measure


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _groups(sweep_dir: Path) -> dict[str, list[Path]]:
    """Trial run directories by their configuration (parameters as a label), in the grid's order."""
    import json

    groups: dict[str, list[Path]] = {}
    for record in sorted(Path(sweep_dir).glob("trials/*/trial.json")):
        t = json.loads(record.read_text())
        groups.setdefault(label(t["params"]), []).append(record.parent)
    return groups


def _panel(ax, measure: str, groups: dict[str, list[Path]]) -> None:
    family, _, name = measure.partition(".")
    name = name.split()[0] if family == "epochs_to" else name
    for k, (group, dirs) in enumerate(groups.items()):
        colour = f"C{k}"
        if family == "weights":
            sizes = np.concatenate([_kernel_sizes(d) for d in dirs] or [np.zeros(0)])
            if len(sizes):
                ax.hist(np.log10(np.maximum(sizes, FLOOR)), bins=60, histtype="step", color=colour, label=group)
        elif family == "jitter":
            rows = read_step_records(dirs[0] / "losses.csv")
            ax.plot(
                [r["samples"] for r in rows], [r["loss"] for r in rows], color=colour, lw=0.6, alpha=0.7, label=group
            )
        elif family in ("time", "path"):
            values = [v for d in dirs if (v := _measured(measure, d)) is not None]
            if values:
                ax.bar(k, np.mean(values), yerr=np.std(values), color=colour, label=group, capsize=4)
        elif family == "flags":
            _grad_steps(ax, dirs[0], colour, group)
        elif family == "gap":
            _band(ax, dirs, name, colour, f"{group} ({name})", "-")
            _band(ax, dirs, f"val_{name}", colour, f"{group} (val_{name})", "--")
        else:
            column = f"val_{name}" if family == "test" and _column(dirs[0], f"val_{name}") else name
            _band(ax, dirs, column, colour, group, "-")
    if family == "weights":
        ax.axvline(math.log10(ZERO), color="k", lw=0.8, ls=":")
        ax.set_xlabel(f"log10 |w| of the final kernels (dotted: {ZERO:g}, counted as zero; below 1e-12 drawn at -12)")
        ax.set_ylabel("weights")
    elif family == "jitter":
        ax.set_xlabel("samples seen (first seed)")
        ax.set_ylabel("batch loss, each step")
        ax.set_yscale("log")
    elif family in ("time", "path"):
        ax.set_xticks(range(len(groups)), list(groups), fontsize=7, rotation=20)
        ax.set_ylabel(f"{measure} (mean and spread over seeds)")
    else:
        _scale_to_fit(ax, family, name, measure)
        ax.set_xlabel("step (first seed)" if family == "flags" else "epoch")
        ax.set_ylabel(f"first layer's gradient norm (0 drawn at {FLOOR:g})" if family == "flags" else name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _column(run_dir: Path, column: str) -> list[float]:
    from dnncli.experiment.runfiles import read_history

    try:
        rows = read_history(run_dir)
    except DnnError:  # a trial stopped before its first epoch ended: no curve to draw
        return []
    return [float(r[column]) if r.get(column) not in (None, "") else math.nan for r in rows]


def _grad_steps(ax, run_dir: Path, colour: str, group: str) -> None:
    """The first watched layer's gradient norm at every recorded step, on a log scale: an exact zero (a collapsed
    layer) drawn at ``FLOOR``, the step where a run went non-finite marked with a cross."""
    records = read_step_records(run_dir / "gradients.csv")
    if not records:
        return
    first = min(r["layer_index"] for r in records)
    rows = [r for r in records if r["layer_index"] == first]
    steps = [r["step"] for r in rows]
    norms = [max(r["grad_norm"], FLOOR) if math.isfinite(r["grad_norm"]) else math.nan for r in rows]
    ax.plot(steps, norms, color=colour, lw=1.0, label=group)
    stop = nonfinite_event(run_dir)
    if stop is not None:
        finite = [v for v in norms if math.isfinite(v)]
        at = finite[-1] if finite else 1.0
        ax.plot(
            stop["step"], at, "x", color=colour, ms=10, mew=2.5, label=f"{group}: non-finite at step {stop['step']}"
        )
    ax.set_yscale("log")


def _scale_to_fit(ax, family: str, name: str, measure: str) -> None:
    """A loss that spans decades (a diverging run's beside a learning one's) on a log scale; the bound an
    ``epochs_to`` measure looks for drawn across."""
    if family == "epochs_to":
        ax.axhline(float(measure.split()[-1]), color="k", lw=0.8, ls=":")
    low, high = ax.dataLim.y0, ax.dataLim.y1
    if name.endswith("loss") and low > 0 and high / low > 100:
        ax.set_yscale("log")


def _band(ax, dirs: list[Path], column: str, colour: str, label: str, style: str) -> None:
    """The mean over the runs of a history column by epoch, and the range they span shaded."""
    curves = [c for c in (_column(d, column) for d in dirs) if c]
    if not curves:
        return
    n = max(map(len, curves))
    grid = np.full((len(curves), n), np.nan)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
    with np.errstate(all="ignore"):
        mean = np.nanmean(grid, axis=0)
        low, high = np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
    epochs = np.arange(1, n + 1)
    ax.plot(epochs, mean, style, color=colour, lw=1.6, label=label)
    if len(curves) > 1:
        ax.fill_between(epochs, low, high, color=colour, alpha=0.15, lw=0)


def _kernel_sizes(run_dir: Path) -> np.ndarray:
    from dnncli.experiment.expect.measures import Outcome

    kernels = Outcome(run_dir).kernels
    return np.concatenate([np.abs(k).ravel() for k in kernels]) if kernels else np.zeros(0)


def _measured(text: str, run_dir: Path) -> float | None:
    from dnncli.experiment.expect.measures import FAMILIES, Measure, Outcome, measure

    family, _, name = text.partition(".")
    return measure(Measure(family, name), Outcome(run_dir)) if family in FAMILIES else None
