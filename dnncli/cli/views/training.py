"""The training display, a ``Reporter``: on a terminal, a live view sized to the terminal (the newest epochs, one
row per layer with its gradient norm, trend, update ratio, dead or saturated share and flags, and the progress bar);
elsewhere, one plain line per epoch, plus a line per layer whenever a flag is raised or cleared; then the summary."""

from __future__ import annotations

import math
import sys
import time
from collections import deque

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from dnncli.cli.views.layers import layer_panel, pick_layers
from dnncli.cli.views.numbers import fmt, fmt_column, needs_scientific, sci
from dnncli.cli.views.tables import Col, fitted_table
from dnncli.diagnostics.rules import layer_span
from dnncli.errors import plural
from dnncli.experiment.run import Reporter, RunResult


def epoch_columns(metrics: list[str], validation: bool) -> list[tuple[str, Col]]:
    """(log key, column) of the epoch table, in order; per-layer numbers are in the layer panel."""
    cols = [("epoch", Col("epoch")), ("loss", Col("loss"))]
    cols += [(m, Col(m, drop=2)) for m in metrics]
    if validation:
        cols += [("val_loss", Col("val_loss", drop=1))] + [(f"val_{m}", Col(f"val_{m}", drop=3)) for m in metrics]
    cols += [("learning_rate", Col("lr", drop=4)), ("time", Col("time", drop=5)), ("flags", Col("flags", drop=6))]
    return cols


def _cell(key, value) -> str:
    if key == "flags":
        n = len([f for f in (value or "").split("; ") if f])
        return str(n) if n else ""
    if key == "time" and isinstance(value, float):
        return f"{value:.2f}s"
    if key == "epoch":
        return str(value)
    return fmt(value)


def epoch_cells(columns: list[tuple[str, Col]], rows: list[dict]) -> list[list[str]]:
    """The epoch table's cells: each number column in one format (``fmt_column``), over the ``rows`` given."""
    out = [[] for _ in rows]
    for key, _ in columns:
        values = [row.get(key) for row in rows]
        cells = [_cell(key, v) for v in values] if key in ("epoch", "time", "flags") else fmt_column(values)
        for line, cell in zip(out, cells):
            line.append(cell)
    return out


class TrainingView:
    """The live training view, drawn to the terminal's size at every refresh."""

    def __init__(self, info: dict, progress: Progress):
        self.info = info
        self.progress = progress
        self.columns = epoch_columns(info["metrics"], info["validation"] > 0)
        self.rows: deque = deque(maxlen=500)
        self.layers: list = []
        self.epochs_done = 0

    def add_epoch(self, row: dict, layers) -> None:
        self.rows.append(row)  # formatted when drawn: a column in one format, over the epochs shown
        self.layers = layers
        self.epochs_done += 1

    def update_layers(self, layers) -> None:
        self.layers = layers  # the epoch's numbers so far; drawn at the next refresh

    def __rich_console__(self, console, options):
        width = options.max_width
        height = (options.height or console.size.height) - 1  # the cursor's line
        head = Text(f"{self.info['name']}  {self.info['run_dir']}", style="bold", no_wrap=True, overflow="fold")
        layers = self.layers or [_waiting(w) for w in self.info["watched"]]
        cols = [c for _, c in self.columns]
        fixed = _lines(console, width, head) + _lines(console, width, self.progress)
        one_row = fitted_table(console, cols, [self._blank()], width, note="epochs shown; all in history.csv")
        room = height - fixed - _lines(console, width, one_row)
        # the layer panel first (each layer a row), then as many of the newest epochs as the rest holds
        shown = pick_layers(layers, max(1, room - 3))
        while True:
            note = ""
            if len(shown) < len(layers):
                note = f"{len(shown)} of {plural(len(layers), 'layer')} shown, flagged first;"
                note += " all: dnn inspect-gradients RUN_DIR"
            panel = layer_panel(console, shown, width, note)
            panel_lines = _lines(console, width, panel)
            if panel_lines <= room or len(shown) == 1:
                break
            shown = pick_layers(layers, max(1, len(shown) - (panel_lines - room)))
        rows = list(self.rows)
        k = max(1, min(len(rows), height - fixed - panel_lines - (_lines(console, width, one_row) - 1)))
        while True:
            kept = epoch_cells(self.columns, rows[-k:]) or [self._blank()]
            note = ""
            if len(rows) > len(kept):
                first = self.epochs_done - len(kept) + 1
                shown = f"epoch {first}" if first == self.epochs_done else f"epochs {first}-{self.epochs_done}"
                note = f"{shown} shown; all in history.csv"
            table = fitted_table(console, cols, kept, width, note=note)
            if k == 1 or fixed + panel_lines + _lines(console, width, table) <= height:
                break
            k -= 1
        yield Group(head, table, panel, self.progress)

    def _blank(self) -> list[str]:
        return ["-"] * len(self.columns)


def _lines(console: Console, width: int, renderable) -> int:
    return len(console.render_lines(renderable, console.options.update(width=width, height=None), pad=False))


def _waiting(w: dict):
    from dnncli.diagnostics.monitor import LayerSummary

    return LayerSummary(w["index"], w["name"], w["activation"])


class PlainReporter(Reporter):
    """One header line, then one line per epoch and one per flag raised or cleared; no escape codes."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.columns: list[tuple[str, Col]] = []
        self.scientific: set[str] = set()  # columns that have needed scientific notation: they keep it

    def _print(self, text=""):
        print(text, file=self.stream, flush=True)

    def _start(self, info) -> None:
        self.info = info
        self.columns = epoch_columns(info["metrics"], info["validation"] > 0)[:-1]  # flags get lines of their own
        history = info.get("history", [])
        self.scientific = {key for key, _ in self.columns if needs_scientific([r.get(key) for r in history])}

    def train_begin(self, info):
        self._start(info)
        if self.quiet:
            return
        verb = "Resuming" if info["resumed"] else "Training"
        params = info["params"]
        self._print(
            f"{verb} {info['name']} in {info['run_dir']}: {plural(info['samples'], 'sample')}"
            f"{', ' + str(info['validation']) + ' for validation' if info['validation'] else ''},"
            f" batch size {info['batch_size']} ({plural(info['steps'], 'step')} per epoch),"
            f" {params:,} parameter{'s' if params != 1 else ''}, {plural(len(info['watched']), 'dense layer')} watched"
        )
        self._print(self._line(c.header for _, c in self.columns) + "  gradient norms |dW|")

    def _line(self, cells) -> str:
        return "  ".join(c.rjust(max(len(col.header), 10)) for c, (_, col) in zip(cells, self.columns))  # 1.2346e+05

    def epoch_end(self, row, layers):
        if self.quiet:
            return
        # a column keeps one format from the epoch that needs it on (scientific stays so); one row formatted an epoch
        cells = []
        for key, _ in self.columns:
            if key in ("epoch", "time", "flags"):
                cells.append(_cell(key, row.get(key)))
                continue
            if needs_scientific([row.get(key)]):
                self.scientific.add(key)
            cells.append(fmt_column([row.get(key)], key in self.scientific)[0])
        line = self._line(cells)
        finite = [s for s in layers if math.isfinite(s.grad_norm)]
        if finite:
            low = min(finite, key=lambda s: s.grad_norm)
            high = max(finite, key=lambda s: s.grad_norm)
            line += f"  min {sci(low.grad_norm)} ({low.name}), max {sci(high.grad_norm)} ({high.name})"
        self._print(line)
        events = []  # in the order they happened: an explosion's raise before the collapse that follows it
        for s in layers:
            states = {f.name: f for f in s.states}
            who = f"{s.name} ({s.index}, {s.activation})"
            for name in s.raised:
                detail = f": {states[name].detail}" if name in states else ""
                line = f"  flag raised: {who} {name}{_at(s.raised_at, name)}{detail}"
                events.append((s.raised_at.get(name, (0,))[0], s.index, 0, line))
            for name in s.cleared:
                line = f"  flag cleared: {who} {name}{_at(s.cleared_at, name)}"
                events.append((s.cleared_at.get(name, (0,))[0], s.index, 1, line))
        for *_, line in sorted(events):
            self._print(line)

    def train_end(self, result):
        if result is not None:  # None: the run ended on an error, which the caller reports
            print_result(result, self._print, [w["name"] for w in self.info["watched"]])


def _at(when: dict, name: str) -> str:
    return f" at step {when[name][0]} (epoch {when[name][1]})" if name in when else ""


def flag_summary(result: RunResult, order: list[str] | None = None) -> list[str]:
    """The end-of-training summary: each flag raised during the run, by onset, and where to look for the detail.

    ``order``: every watched layer's name in model order, to write runs of layers by their ends (gaps said)."""
    if not result.flags:
        return ["No gradient flag raised: every layer's gradients stayed in range."]
    groups: dict[tuple, list[dict]] = {}
    for f in result.flags:
        key = (f["flag"], f["onset_epoch"], f["active_at_end"], f.get("transient", False))
        groups.setdefault(key, []).append(f)
    out = [f"Flags raised during the run (per layer and step, with advice: dnn inspect-gradients {result.run_dir}):"]
    for (flag, onset, active, transient), items in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[1][0]["index"])):
        names = layer_span([f["layer"] for f in items], order or [])
        if transient:
            when = f"at initialization (epoch {onset}), then cleared: transient"
        elif active:
            when = f"from epoch {onset}, still at the end"
        else:
            last = max(f["last_epoch"] for f in items)
            when = f"from epoch {onset} to epoch {last}, then cleared" if last != onset else f"in epoch {onset} only"
        out.append(f"  {flag} in {names}: {when}")
    if any(not f.get("transient", False) for f in result.flags):
        out.append(
            f"Try the advice on this network and write the fix: dnn inspect-gradients {result.run_dir}"
            " --try-advice --write-config FIXED.yaml"
        )
    return out


def print_result(result: RunResult, emit, order: list[str] | None = None) -> None:
    if result.message:
        emit(result.message)
    if result.restored_epoch is not None:  # as Keras says it
        emit(f"Restoring model weights from the end of the best epoch: {result.restored_epoch}.")
    for line in flag_summary(result, order):
        emit(line)
    if result.test is not None:
        parts = ", ".join(f"{k} {fmt(v)}" for k, v in result.test.items())
        emit(f"Test: {parts}" + (f"; {result.test_units}" if result.test_units else ""))
    elif result.status in ("completed", "early_stopped"):
        emit(f"Test: no test set (data.test_split: 0); evaluate with: dnn eval {result.run_dir} --data FILE")
    if result.status in ("completed", "early_stopped"):
        emit(f"Model: {result.run_dir / 'model.npz'}")


class LiveReporter(Reporter):
    """The live view under a progress bar, for terminals; then the same summary as ``PlainReporter``'s."""

    layers_every = 0.25  # the layer panel moves within an epoch too; each update costs a pass over the layers

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.live = None
        self._last = 0.0

    def train_begin(self, info):
        self.info = info
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
        self.view = TrainingView(info, self.progress)
        for row in info.get("history", []):
            self.view.rows.append(row)
            self.view.epochs_done += 1
        self.live = Live(self.view, console=self.console, refresh_per_second=8, vertical_overflow="crop")
        self.live.start()

    def batch_end(self, epoch, done, total, loss):
        now = time.perf_counter()
        if now - self._last < 0.05 and done < total:
            return
        self._last = now
        self.progress.update(self.task, completed=done, total=total, epoch=epoch + 1, loss=fmt(loss))

    def layers_update(self, layers):
        self.view.update_layers(layers)

    def epoch_end(self, row, layers):
        self.view.add_epoch(row, layers)
        self.progress.update(self.task, completed=0, epoch=min(row["epoch"] + 1, self.info["epochs"]))

    def train_end(self, result):
        if self.live is not None:
            self.progress.update(self.task, visible=False)
            self.live.stop()
        if result is not None:
            print_result(result, self.console.print, [w["name"] for w in self.info["watched"]])
