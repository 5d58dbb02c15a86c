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
    return cols


def _cell(key, value) -> str:
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
            self.table.add_column(header, justify="right", style="cyan" if key.startswith("grad_norm.") else None)
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
