"""``dnn compare``: runs side by side (the config keys that differ, final and best metric, epochs, time) and
their curves overlaid, against epochs, steps, samples seen or seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

from dnncli.errors import DnnError, check_choice
from dnncli.experiment.rundir import read_step_records
from dnncli.experiment.runfiles import read_history
from dnncli.files import atomic_write
from dnncli.train import metrics as metrics_mod

X_AXES = ("epoch", "step", "samples", "seconds")


def run_dirs(paths) -> list[Path]:
    """Run directories from the arguments: a run directory itself, a sweep directory's ``trials/*``, or a folder of
    either (``runs/sweeps``, where sweeps go by default)."""
    out = []
    for p in map(Path, paths):
        found = _runs_in(p)
        if found is None and p.is_dir():
            children = [_runs_in(c) for c in sorted(p.iterdir()) if c.is_dir()]
            found = [r for c in children if c for r in c] or None
        if found is None:
            raise DnnError(f"{p}: not a run directory (no config.yaml and history.csv) nor a sweep directory.")
        if not found:
            raise DnnError(f"{p}: a sweep directory with no finished epoch in any trial yet.")
        out += found
    if len(out) < 1:
        raise DnnError("dnn compare needs run directories.")
    return out


def _runs_in(p: Path) -> list[Path] | None:
    """``[p]`` for a run directory, a sweep directory's trials with an epoch done, None for anything else."""
    if (p / "config.yaml").exists() and (p / "history.csv").exists():
        return [p]
    if (p / "trials").is_dir():
        return sorted(t for t in (p / "trials").iterdir() if (t / "history.csv").exists())
    return None


def _history(run_dir: Path) -> list[dict]:
    return read_history(run_dir)  # numbers as numbers; damaged, one line naming it; a spreadsheet's BOM and CRLF read


def _flat(mapping, prefix: str = "") -> dict:
    out = {}
    if isinstance(mapping, dict):
        for k, v in mapping.items():
            out.update(_flat(v, f"{prefix}{k}."))
    elif isinstance(mapping, list) and all(isinstance(v, dict) for v in mapping):
        for i, v in enumerate(mapping):
            out.update(_flat(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = mapping
    return out


def _number(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def compare(paths, metric: str | None = None) -> dict:
    """The comparison as data: the metric and its direction, the config keys that differ, a row per run."""
    from dnncli.experiment.config import read_config_file

    dirs = run_dirs(paths)
    histories = [_history(d) for d in dirs]
    columns = set.intersection(*(set(h[0]) if h else set() for h in histories))
    if metric is None:
        metric = "val_loss" if "val_loss" in columns else "loss"
    if metric not in columns:
        logged = ", ".join(sorted(c for c in columns if c not in ("epoch", "flags", "time")))
        raise DnnError(f"--metric {metric}: not logged by every run. Logged by all: {logged}.")
    mode = metrics_mod.direction(metric)
    flat = []
    for d in dirs:
        flat.append(_flat(read_config_file(d / "config.yaml")[0]))  # limits held, damage one line naming it
    keys = sorted(k for k in set().union(*flat) if k != "name" and len({repr(c.get(k)) for c in flat}) > 1)
    runs = []
    for d, h, c in zip(dirs, histories, flat):
        values = [_number(r[metric]) for r in h]
        finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
        best = (min(finite) if mode == "min" else max(finite)) if finite else (math.nan, -1)
        runs.append(
            {
                "run_dir": str(d),
                "name": c.get("name", d.name),
                "params": {k: c.get(k) for k in keys},
                "final": values[-1] if values else math.nan,
                "best": best[0],
                "best_epoch": int(h[best[1]]["epoch"]) if best[1] >= 0 else None,
                "epochs": len(h),
                "seconds": sum(_number(r.get("time")) for r in h if math.isfinite(_number(r.get("time")))),
            }
        )
    return {"metric": metric, "mode": mode, "keys": keys, "runs": runs}


def plot_compare(report: dict, out, x: str = "epoch") -> Path:
    """The runs' curves of the report's metric overlaid; against steps, samples or seconds, the batch loss."""
    from dnncli.experiment.plot import _matplotlib

    x = check_choice(x, "--x", X_AXES)
    metric = report["metric"]
    if x != "epoch" and metric not in ("loss", "data_loss"):
        raise DnnError(f"--x {x}: per-step curves are of the batch loss (losses.csv); use --x epoch for {metric}.")
    plt, _ = _matplotlib()
    fig, ax = plt.subplots(figsize=(8, 5))
    shown: list[float] = []
    for k, run in enumerate(report["runs"]):
        label = _label(run, report["keys"])
        d = Path(run["run_dir"])
        if x == "epoch":
            h = _history(d)
            ax.plot(
                [int(r["epoch"]) for r in h], [_number(r[metric]) for r in h], "o-", ms=3, label=label, color=f"C{k}"
            )
            continue
        rows = read_step_records(d / "losses.csv")
        if not rows:
            raise DnnError(f"{d}: no losses.csv (a run from before per-step losses were recorded); use --x epoch.")
        xs = [r[x] for r in rows]
        ys = [r["loss"] for r in rows]
        smooth = _running_mean(ys, max(1, len(ys) // 50))
        ax.plot(xs, ys, color=f"C{k}", alpha=0.25, lw=0.6)
        ax.plot(xs, smooth, color=f"C{k}", lw=1.8, label=label)
        shown += [v for v in smooth if math.isfinite(v)]
    ax.set_xlabel({"epoch": "epoch", "step": "step (updates)", "samples": "samples seen", "seconds": "seconds"}[x])
    ax.set_ylabel(metric if x == "epoch" else "batch loss (and its running mean)")
    if shown:  # single samples' losses span decades: the running means set the range
        low, high = min(shown), max(shown)
        ax.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
    elif metric.endswith("loss"):
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(f"{metric} by {x}")
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, dpi=110, format="png"), binary=True)
    plt.close(fig)
    return Path(out)


def _label(run: dict, keys: list[str]) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in run["params"].items() if not isinstance(v, (dict, list))]
    return ", ".join(parts[:3]) or run["name"]


def _running_mean(values: list[float], window: int) -> list[float]:
    out, total, kept = [], 0.0, []
    for v in values:
        if math.isfinite(v):
            kept.append(v)
            total += v
            if len(kept) > window:
                total -= kept.pop(0)
        out.append(total / len(kept) if kept else math.nan)
    return out
