"""``dnn inspect-gradients``, ``dnn gradcheck`` and ``dnn plot``: the diagnostics, as data.

The CLI renders what these functions return; they never print.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dnncli import gradcheck
from dnncli.errors import DnnError
from dnncli.monitor import Flag, GradientMonitor, LayerSummary, advice, diagnose
from dnncli.training import Callback, Interrupted, NonFiniteLoss, Trainer


class _StopAfter(Callback):
    def __init__(self, steps: int):
        self.steps = steps

    def on_batch_end(self, trainer, step, logs):
        if step >= self.steps:
            trainer.request_stop()


def _report(summaries: list[LayerSummary], steps: list[int], norms: dict, config, source: str, nonfinite=None):
    return {
        "source": source,
        "steps": steps,
        "layers": [
            {
                "index": s.index,
                "name": s.name,
                "activation": s.activation,
                "grad_norm": norms[s.index],
                "flags": sorted({f.name for f in s.flags}),
                "details": [f"{f.name}: {f.detail}" for f in s.flags],
                "weight_norm": s.weight_norm,
                "dead_fraction": s.dead_fraction,
                "saturated_fraction": s.saturated_fraction,
            }
            for s in summaries
        ],
        "advice": advice(summaries, config.raw),
        "nonfinite": nonfinite,
    }


def inspect_config(config, steps: int | None = None, every: int | None = None) -> dict:
    """Train from the config's initial weights for ``steps`` steps (default one epoch) and diagnose."""
    from dnncli.run import prepare_data

    model = config.build_model()
    loss = config.build_loss()
    data = prepare_data(config, model, loss)
    t = config["training"]
    trainer = Trainer(
        model, loss, config.build_optimizer(), config.batch_size(len(data.x_train)), t["shuffle"], config["seed"]
    )
    cfg = dict(config["monitor"])
    if every is not None:
        cfg["every"] = every
    monitor = GradientMonitor(model, cfg)
    per_epoch = math.ceil(len(data.x_train) / trainer.batch_size)
    steps = per_epoch if steps is None else steps
    nonfinite = None
    try:
        with np.errstate(all="ignore"):
            trainer.fit(
                data.x_train,
                data.y_train,
                epochs=math.ceil(steps / per_epoch),
                callbacks=[monitor, _StopAfter(steps)],
                prepared=True,
            )
    except Interrupted:
        pass
    except NonFiniteLoss as err:
        where = "" if err.layer is None else f" in layer {err.layer} ({model.layers[err.layer].name})"
        nonfinite = {
            "stage": err.stage,
            "layer": err.layer,
            "step": err.step + 1,
            "message": f"non-finite {err.stage}{where} at step {err.step + 1}",
        }
    records = monitor.records
    recorded = sorted({r["step"] for r in records})
    norms = {i: [r["grad_norm"] for r in records if r["layer_index"] == i] for i, _ in monitor.layers}
    summaries = monitor.summarize(records)
    first = {i: v[0] for i, v in norms.items() if v}
    if nonfinite is not None:
        layer = nonfinite["layer"]
        for s in summaries:
            if s.index == layer or (layer is None and s is summaries[-1]):
                s.nonfinite = nonfinite["message"]
    # growth over the run, first recorded step to last, stands in for epoch-to-epoch growth
    last = {s.index: s for s in summaries}
    for i, v in norms.items():
        if v:
            last[i].grad_norm = float(np.mean(v[-max(1, len(v) // 4) :]))
    diagnose(summaries, config["monitor"], first if len(recorded) > 1 else None)
    return _report(summaries, recorded, norms, config, "steps", nonfinite)


def inspect_run(run_dir) -> dict:
    """Diagnose what a run recorded: columns are epochs, cells the mean gradient norm of each."""
    from dnncli import config as config_mod
    from dnncli.run import read_step_records

    run_dir = Path(run_dir)
    config = config_mod.load(run_dir / "config.yaml", check_paths=False)
    records = read_step_records(run_dir / "gradients.csv")
    if not records:
        raise DnnError(f"{run_dir}: no gradients.csv records yet.")
    model = config.build_model()
    monitor = GradientMonitor(model, config["monitor"])
    epochs = sorted({r["epoch"] for r in records})
    norms = {i: [] for i, _ in monitor.layers}
    flags: dict[int, dict[str, str]] = {i: {} for i, _ in monitor.layers}
    previous = None
    summaries = []
    for e in epochs:
        summaries = monitor.summarize([r for r in records if r["epoch"] == e])
        diagnose(summaries, config["monitor"], previous)
        previous = {s.index: s.grad_norm for s in summaries}
        for s in summaries:
            norms[s.index].append(s.grad_norm)
            for f in s.flags:
                flags[s.index].setdefault(f.name, f"epoch {e}: {f.detail}")
    for s in summaries:  # every flag any epoch raised, with the first epoch's numbers
        s.flags = [Flag(name, detail) for name, detail in flags[s.index].items()]
    return _report(summaries, epochs, norms, config, "epochs")


def gradcheck_config(config, samples: int = 4, entries: int = 20, tolerance: float = 1e-6) -> dict:
    """Central differences on the user's architecture and loss, in float64, on ``samples`` samples."""
    from dnncli.run import prepare_data

    config.raw["dtype"] = "float64"
    model = config.build_model()
    loss = config.build_loss()
    data = prepare_data(config, model, loss)
    x, y = data.x_train[:samples], data.y_train[:samples]
    rows = gradcheck.check_model(model, x, y, loss, max_per_param=entries, seed=config["seed"])
    return {
        "samples": len(x),
        "tolerance": tolerance,
        "rows": [
            {
                "layer_index": r.layer_index,
                "layer": r.layer,
                "param": r.param,
                "checked": r.checked,
                "max_rel_error": r.max_rel_error,
                "max_abs_error": r.max_abs_error,
                "passed": r.passed(tolerance),
            }
            for r in rows
        ],
        "passed": all(r.passed(tolerance) for r in rows),
    }


def plot_run(run_dir, out: Path) -> Path:
    """Loss and metric curves, and a log-scale heat map of gradient norms (layers by epochs), as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm
    except ImportError:
        raise DnnError("dnn plot needs matplotlib: pip install 'dnncli[plot]'") from None
    from dnncli.run import read_step_records

    run_dir = Path(run_dir)
    history_path = run_dir / "history.csv"
    if not history_path.exists():
        raise DnnError(f"{run_dir}: no history.csv (not a run directory, or no epoch finished yet).")
    import csv

    with open(history_path, newline="") as f:
        history = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in history]
    skip = {"epoch", "data_loss", "penalty", "learning_rate", "time", "flags", "skipped_batches"}
    curves = [k for k in history[0] if k not in skip and not k.startswith("val_") and not k.startswith("grad_norm.")]
    records = read_step_records(run_dir / "gradients.csv")
    layers = sorted({(r["layer_index"], r["layer"]) for r in records})
    fig, axes = plt.subplots(1, len(curves) + 1, figsize=(5 * (len(curves) + 1), 4), squeeze=False)
    for ax, key in zip(axes[0], curves):
        ax.plot(epochs, [float(r[key]) for r in history], "o-", label=f"training {key}")
        if f"val_{key}" in history[0]:
            ax.plot(epochs, [float(r[f"val_{key}"]) for r in history], "s--", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    ax = axes[0][-1]
    if layers:
        grid = np.full((len(layers), len(epochs)), np.nan)
        for li, (index, _) in enumerate(layers):
            for ej, e in enumerate(epochs):
                values = [r["grad_norm"] for r in records if r["layer_index"] == index and r["epoch"] == e]
                if values:
                    grid[li, ej] = np.mean(values)
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
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
