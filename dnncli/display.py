"""Everything the CLI shows: rich tables on a terminal, plain lines elsewhere.

The training display is a ``Reporter``: on a terminal, a live table that grows
by one row per epoch under a progress bar; when standard output is not a
terminal, the same rows as plain text lines, with no escape codes.
"""

from __future__ import annotations

import math
import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dnncli.run import Reporter, RunResult


def fmt(value, width: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


def epoch_columns(metrics: list[str], layers: list[str], validation: bool) -> list[tuple[str, str]]:
    """(log key, header) pairs of the epoch table, in order."""
    cols = [("epoch", "epoch"), ("loss", "loss")]
    cols += [(m, m) for m in metrics]
    if validation:
        cols += [("val_loss", "val_loss")] + [(f"val_{m}", f"val_{m}") for m in metrics]
    cols += [("learning_rate", "lr"), ("time", "time")]
    cols += [(f"grad_norm.{name}", f"|dW| {name}") for name in layers]
    cols += [("flags", "flags")]
    return cols


def _cell(key, value) -> str:
    if key == "flags":
        return value or ""
    if key == "time" and isinstance(value, float):
        return f"{value:.2f}s"
    if key == "epoch":
        return str(value)
    return fmt(value)


class PlainReporter(Reporter):
    """One header line, then one line per epoch; no escape codes, no progress bar."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.columns: list[tuple[str, str]] = []

    def _print(self, text=""):
        print(text, file=self.stream, flush=True)

    def train_begin(self, info):
        self.info = info
        self.columns = epoch_columns(info["metrics"], info["layers"], info["validation"] > 0)
        if self.quiet:
            return
        verb = "Resuming" if info["resumed"] else "Training"
        self._print(
            f"{verb} {info['name']} in {info['run_dir']}: {info['samples']} samples"
            f"{', ' + str(info['validation']) + ' for validation' if info['validation'] else ''},"
            f" batch size {info['batch_size']} ({info['steps']} steps/epoch), {info['params']} parameters"
        )
        self._print(self._line(h for _, h in self.columns))

    def _line(self, cells) -> str:
        return "  ".join(c.rjust(max(len(h), 8)) for c, (_, h) in zip(cells, self.columns)).rstrip()

    def epoch_end(self, row):
        if not self.quiet:
            self._print(self._line(_cell(k, row.get(k)) for k, _ in self.columns))

    def train_end(self, result):
        print_result(result, self._print)


def print_result(result: RunResult, emit) -> None:
    if result.message:
        emit(result.message)
    if result.test is not None:
        parts = ", ".join(f"{k} {fmt(v)}" for k, v in result.test.items())
        emit(f"Test: {parts}")
    if result.status in ("completed", "early_stopped"):
        emit(f"Model: {result.run_dir / 'model.npz'}")


class LiveReporter(PlainReporter):
    """A live table under a progress bar, for terminals."""

    def __init__(self, console: Console | None = None):
        super().__init__()
        self.console = console or Console()
        self.live = None
        self._last = 0.0

    def train_begin(self, info):
        self.info = info
        self.columns = epoch_columns(info["metrics"], info["layers"], info["validation"] > 0)
        self.table = Table(title=f"{info['name']}  ({info['run_dir']})", title_justify="left")
        for key, header in self.columns:
            style = "cyan" if key.startswith("grad_norm.") else "bold red" if key == "flags" else None
            self.table.add_column(header, justify="left" if key == "flags" else "right", style=style)
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task(
            "", total=info["samples"], epoch=info["start_epoch"] + 1, epochs=info["epochs"], loss="-"
        )
        self.live = Live(Group(self.table, self.progress), console=self.console, refresh_per_second=8)
        self.live.start()

    def batch_end(self, epoch, done, total, loss):
        now = time.perf_counter()
        if now - self._last < 0.05 and done < total:
            return
        self._last = now
        self.progress.update(self.task, completed=done, total=total, epoch=epoch + 1, loss=fmt(loss))

    def epoch_end(self, row):
        self.table.add_row(*(_cell(k, row.get(k)) for k, _ in self.columns))
        self.progress.update(self.task, completed=0, epoch=min(row["epoch"] + 1, self.info["epochs"]))

    def train_end(self, result):
        if self.live is not None:
            self.progress.update(self.task, visible=False)
            self.live.stop()
        print_result(result, self.console.print)


def summary_table(summary, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("#", "Layer (type)", "Output Shape", "Param #"):
        table.add_column(header, justify="right" if header in ("#", "Param #") else "left")
    for r in summary.rows:
        shape = "(" + ", ".join("None" if d is None else str(d) for d in r.output_shape) + ")"
        table.add_row(str(r.index), f"{r.name} ({r.type})", shape, f"{r.params:,}")
    return table


def summary_lines(summary) -> list[str]:
    return [
        f"Total params: {summary.total:,}",
        f"Trainable params: {summary.trainable:,}",
        f"Non-trainable params: {summary.non_trainable:,}",
    ]


def eval_tables(report: dict) -> list:
    """Headings and tables for ``dnn eval``: metrics, then confusion matrix and per-class scores."""
    out = [f"{report['run_dir']} on {report['data']} ({report['samples']} samples)"]
    t = Table()
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in report.items():
        if k in ("run_dir", "data", "samples", "confusion_matrix", "per_class"):
            continue
        t.add_row(k, fmt(v))
    out.append(t)
    if "confusion_matrix" in report:
        cm = report["confusion_matrix"]
        names = [r.get("name", str(r["class"])) for r in report["per_class"]]
        out.append("Confusion matrix (rows: true class, columns: predicted class)")
        c = Table()
        c.add_column("true \\ predicted", justify="right")
        for name in names:
            c.add_column(name, justify="right")
        for k, row in enumerate(cm):
            c.add_row(names[k], *(f"[bold]{v}[/bold]" if j == k else str(v) for j, v in enumerate(row)))
        out.append(c)
        p = Table()
        for h in ("class", "precision", "recall", "f1", "support"):
            p.add_column(h, justify="right")
        for r, name in zip(report["per_class"], names):
            p.add_row(name, fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]), str(r["support"]))
        out.append(p)
    return out


def _norm_style(value) -> str:
    if value is None or not math.isfinite(value):
        return "bold red"
    if value < 1e-5 or value > 1e2:
        return "red"
    if value < 1e-3 or value > 10:
        return "yellow"
    return "green"


def inspection_view(report: dict, max_columns: int = 12) -> list:
    """The layers-by-steps (or epochs) table of gradient norms, then the flags and the advice."""
    steps = report["steps"]
    keep = list(range(len(steps)))
    if len(keep) > max_columns:  # evenly spaced columns, first and last included
        keep = sorted({round(i * (len(steps) - 1) / (max_columns - 1)) for i in range(max_columns)})
    unit = "step" if report["source"] == "steps" else "epoch"
    t = Table(title=f"Kernel gradient norm by layer and {unit}", title_justify="left")
    t.add_column("layer")
    for k in keep:
        t.add_column(f"{unit} {steps[k]}", justify="right")
    t.add_column("flags", style="bold red")
    for layer in report["layers"]:
        values = layer["grad_norm"]
        cells = []
        for k in keep:
            v = values[k] if k < len(values) else None
            cells.append(f"[{_norm_style(v)}]{fmt(v)}[/]")
        t.add_row(f"{layer['index']}: {layer['name']} ({layer['activation']})", *cells, ", ".join(layer["flags"]))
    out = [t]
    details = [f"  {layer['name']}: {d}" for layer in report["layers"] for d in layer["details"]]
    if report.get("nonfinite"):
        out.append(f"[bold red]Stopped: {report['nonfinite']['message']}[/]")
    if details:
        out.append("Flags:")
        out.extend(details)
        out.append("Advice:")
        out.extend(f"  - {a}" for a in report["advice"])
    else:
        out.append("No flags: no layer is vanishing, exploding, dead or saturated.")
    return out


def gradcheck_table(report: dict) -> Table:
    t = Table(
        title=f"Gradient check, float64, {report['samples']} samples, tolerance {report['tolerance']:g}",
        title_justify="left",
    )
    for h in ("layer", "param", "checked", "max rel. error", "max abs. error", ""):
        t.add_column(h, justify="left" if h in ("layer", "param") else "right")
    for r in report["rows"]:
        mark = "[green]ok[/]" if r["passed"] else "[bold red]FAIL[/]"
        t.add_row(
            f"{r['layer_index']}: {r['layer']}",
            r["param"],
            str(r["checked"]),
            f"{r['max_rel_error']:.2e}",
            f"{r['max_abs_error']:.2e}",
            mark,
        )
    return t


def bench_view(report: dict) -> list:
    step = report["step_seconds"]
    head = (
        f"{report['config']}: batch {report['batch_size']}, median of {report['steps']} steps:"
        f" {step * 1e3:.3f} ms per step, {report['samples_per_second']:,.0f} samples/s;"
        f" {report['gflops_per_step']:.3f} GFLOP per step in matrix products, {report['achieved_gflops']:.1f} GFLOP/s"
        f" achieved against {report['matmul_peak_gflops']:.1f} GFLOP/s for the same products alone;"
        f" efficiency {report['efficiency']:.2f} (matrix-product time / step time)"
    )
    t = Table(title="Where a step's time goes", title_justify="left")
    t.add_column("part")
    t.add_column("ms", justify="right")
    t.add_column("share", justify="right")
    for part, seconds in report["split_seconds"].items():
        t.add_row(part, f"{seconds * 1e3:.3f}", f"{seconds / step:.0%}")
    return [head, t]
