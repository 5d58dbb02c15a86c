"""Everything the CLI shows: rich views on a terminal, plain text elsewhere.

No number is ever cut. Every table is fitted to the terminal's width: its
columns keep their natural width and, where they do not all fit, the least
needed are left out and a caption says which. The training display is a
``Reporter``: on a terminal, a live view sized to the terminal (the newest
epochs, one row per layer with its gradient norm, trend, update ratio,
dead or saturated share and flags, and the progress bar); elsewhere, one plain
line per epoch, plus a line per layer whenever a flag is raised or cleared.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections import deque
from dataclasses import dataclass

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dnncli.diagnostics.rules import layer_span
from dnncli.errors import plural
from dnncli.experiment.evaluate import UNITS_NOTE
from dnncli.experiment.run import Reporter, RunResult

SPARKS = "▁▂▃▄▅▆▇█"
MAX_PLAIN_COLUMNS = 12  # step or epoch columns of a plain inspect table


# numbers --------------------------------------------------------------------------
def fmt(value) -> str:
    """A number whole, to five significant digits: fixed from 1e-3 to 1e5 (4 decimals below 10, then fewer: 0.6951,
    12.346, 3339.0), else scientific (``1.2346e-05``)."""
    return fmt_column([value])[0]


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral))


def needs_scientific(values: list) -> bool:
    """Whether a column holding these numbers is written in scientific notation (see ``fmt_column``)."""
    mags = [abs(float(v)) for v in values if _is_real(v) and math.isfinite(v) and v != 0]
    return bool(mags) and (max(mags) >= 1e5 or min(mags) < 1e-3)


def fmt_column(values: list, scientific: bool | None = None) -> list[str]:
    """The numbers of one column in one notation, each to five significant digits: fixed where every one lies
    between 1e-3 and 1e5 (4 decimals below 10, then fewer), else scientific for the whole column (``1.2346e+05``):
    never ``48097.8`` above ``1.169e+05``. Integers, None and text as ``fmt`` shows them. ``scientific``: decided
    by the caller (a column printed a row at a time)."""
    if scientific is None:
        scientific = needs_scientific(values)
    out = []
    for v in values:
        if v is None:
            out.append("-")
        elif not _is_real(v):
            out.append(str(v))
        elif math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(f"{float(v):.4e}" if scientific else _fixed(float(v)))
    return out


def sci(value, digits: int = 2) -> str:
    """Scientific notation with ``digits`` significant digits (at least two): ``1.2e-09``."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return fmt(value)
    if value == 0:
        return "0"
    return f"{value:.{max(digits, 2) - 1}e}"


# fitted tables --------------------------------------------------------------------
@dataclass
class Col:
    """A table column: its header, alignment, style, and how much it is needed (0 is never left out)."""

    header: str
    justify: str = "right"
    style: str | None = None
    drop: int = 0  # higher: left out sooner when the table is too wide
    wrap: bool = False  # text that may wrap onto more lines (at spaces); numbers never do


def natural_width(console: Console, renderable) -> int:
    return Measurement.get(console, console.options.update_width(10**5), renderable).maximum


def _table(cols: list[Col], rows: list[list], title: str | None, caption: str | None) -> Table:
    t = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
    )
    for c in cols:
        t.add_column(c.header, justify=c.justify, style=c.style, no_wrap=not c.wrap, overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def fitted_table(
    console: Console, cols: list[Col], rows: list[list], width: int, title: str | None = None, note: str = ""
) -> Table:
    """A table at its natural column widths, leaving out the most droppable columns until it fits ``width``.

    Text columns may wrap. A table that still does not fit keeps its natural width (``natural_width``
    attribute): ``show`` prints it so, and the terminal wraps its lines, rather than cut a cell.
    """
    keep = list(range(len(cols)))
    left_out: list[str] = []
    while True:
        t = _table([cols[k] for k in keep], [[r[k] for k in keep] for r in rows], title, None)
        if natural_width(console, t) <= width:
            break
        droppable = [k for k in keep if cols[k].drop > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda k: (cols[k].drop, k))
        keep.remove(worst)
        left_out.append(cols[worst].header)
    caption = note
    if left_out:
        caption = (note + "; " if note else "") + f"left out to fit {width} columns: {', '.join(left_out)}"
    if caption:
        t = _table([cols[k] for k in keep], [[r[k] for k in keep] for r in rows], title, caption)
    natural = natural_width(console, t)
    if natural > width and not any(cols[k].wrap for k in keep):
        t.natural_width = natural  # nothing may wrap: print it whole, the terminal wraps its lines
    return t


# the training view ----------------------------------------------------------------
def _fixed(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.{max(1, 4 - max(0, math.floor(math.log10(abs(value)))))}f}"  # 0.6951, 12.346, 3339.0


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


def spark(values: list[float]) -> str:
    """The trend of a gradient norm over recent epochs, on a log scale at least a decade tall."""
    logs = [math.log10(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    top = max(logs, default=0.0)
    low = min(logs + [top - 1.0])
    out = ""
    for v in values:
        if v is None or not math.isfinite(v) or v <= 0:
            out += " " if v is None or v == 0 else "!"
            continue
        k = round((math.log10(v) - low) / (top - low) * (len(SPARKS) - 1))
        out += SPARKS[min(max(k, 0), len(SPARKS) - 1)]
    return out


def norm_style(value) -> str:
    """A colour by the decade of a gradient norm: red at the extremes, yellow near them, green between."""
    if value is None or not math.isfinite(value):
        return "bold red"
    if value < 1e-5 or value > 1e3:
        return "red"
    if value < 1e-3 or value > 10:
        return "yellow"
    return "green"


NORM_LEGEND = "colour by magnitude: [red]< 1e-5[/] [yellow]< 1e-3[/] [green]1e-3 to 10[/] [yellow]> 10[/] [red]> 1e3[/]"


SHORT_FLAGS = {
    "vanishing": "vanish",
    "exploding": "expl",
    "collapsed": "collapse",
    "saturated": "sat",
    "stalled": "stall",
    "nonfinite": "nonfin",
}


def _flag_cell(s, short: bool = False) -> str:
    """``vanishing (e1), exploding (e8)``; ``short``: ``vanish e1; expl e8``, and flags of one onset share it."""
    onset = {f.name: f.onset_epoch for f in s.states}
    if not short:
        return ", ".join(f"{name} (e{onset[name]})" if name in onset else name for name in s.flags)
    by_onset: dict = {}
    for name in s.flags:
        by_onset.setdefault(onset.get(name), []).append(SHORT_FLAGS.get(name, name))
    return "; ".join(",".join(names) + (f" e{e}" if e is not None else "") for e, names in by_onset.items())


def _unmeasured(value) -> bool:
    return value is None or math.isnan(value)  # a gradient gone bad stops training: NaN here means no record yet


def layer_rows(layers, short: bool = False) -> list[list]:
    rows = []
    for s in layers:
        kind, share = s.share
        unit = "sat" if kind == "saturated" else kind
        share = "" if not kind else "-" if _unmeasured(share) else f"{share:.0%} {unit}"
        rows.append(
            [
                str(s.index),
                s.name,
                s.activation,
                "-" if _unmeasured(s.grad_norm) else Text(sci(s.grad_norm, 3), style=norm_style(s.grad_norm)),
                spark(s.trend) or "-",
                "-" if _unmeasured(s.update_ratio) else sci(s.update_ratio),
                share,
                Text(_flag_cell(s, short), style="bold red") if s.flags else "",
            ]
        )
    return rows


LAYER_COLS = [
    Col("#"),
    Col("layer", "left"),
    Col("act", "left", drop=4),
    Col("|dW|"),
    Col("trend", "left", drop=3),
    Col("|ΔW|/|W|", drop=2),
    Col("dead/sat", drop=1),
    Col("flags", "left"),
]


def _pick_layers(layers, room: int) -> list:
    """The layers to show in ``room`` rows: all if they fit, else the flagged ones and an even spread of the rest."""
    if len(layers) <= room:
        return list(layers)
    flagged = [s for s in layers if s.flags][:room]
    rest = [s for s in layers if not s.flags]
    k = room - len(flagged)
    if k > 0 and rest:
        step = len(rest) / k
        flagged += [rest[int(j * step)] for j in range(k)]
    return sorted(flagged, key=lambda s: s.index)


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
        shown = _pick_layers(layers, max(1, room - 3))
        while True:
            note = ""
            if len(shown) < len(layers):
                note = f"{len(shown)} of {plural(len(layers), 'layer')} shown, flagged first;"
                note += " all: dnn inspect-gradients RUN_DIR"
            panel = _layer_panel(console, shown, width, note)
            panel_lines = _lines(console, width, panel)
            if panel_lines <= room or len(shown) == 1:
                break
            shown = _pick_layers(layers, max(1, len(shown) - (panel_lines - room)))
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


def _layer_panel(console: Console, layers, width: int, note: str) -> Table:
    """The layer panel; its flags shortened before any column is left out: the columns are their evidence."""
    rows = layer_rows(layers)
    if natural_width(console, _table(LAYER_COLS, rows, None, None)) > width:
        rows = layer_rows(layers, short=True)
    return fitted_table(console, LAYER_COLS, rows, width, note=note)


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


class LiveReporter(PlainReporter):
    """The live view under a progress bar, for terminals."""

    layers_every = 0.25  # the layer panel moves within an epoch too; each update costs a pass over the layers

    def __init__(self, console: Console | None = None):
        super().__init__()
        self.console = console or Console()
        self.live = None
        self._last = 0.0

    def train_begin(self, info):
        self._start(info)
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


# other commands -------------------------------------------------------------------
def summary_table(console: Console, summary, title: str) -> Table:
    cols = [Col("#"), Col("Layer (type)", "left"), Col("Output Shape", "left"), Col("Param #")]
    rows = []
    for r in summary.rows:
        shape = "(" + ", ".join("None" if d is None else str(d) for d in r.output_shape) + ")"
        rows.append([str(r.index), f"{r.name} ({r.type})", shape, f"{r.params:,}"])
    return fitted_table(console, cols, rows, console.width, title=title)


def summary_lines(summary) -> list[str]:
    return [
        f"Total params: {summary.total:,}",
        f"Trainable params: {summary.trainable:,}",
        f"Non-trainable params: {summary.non_trainable:,}",
    ]


def eval_tables(console: Console, report: dict) -> list:
    """Headings and tables for ``dnn eval``: metrics, then confusion matrix and per-class scores."""
    width = console.width
    out = [f"{report['run_dir']} on {report['data']} ({plural(report['samples'], 'sample')})"]
    shown = {
        k: v
        for k, v in report.items()
        if k not in ("run_dir", "data", "samples", "confusion_matrix", "per_class", "units", "target_scale")
    }
    rows = [[k, cell] for k, cell in zip(shown, fmt_column(list(shown.values())))]
    out.append(fitted_table(console, [Col("metric", "left"), Col("value")], rows, width))
    if report.get("units"):
        out.append(f"{UNITS_NOTE} (data.target_scale: {report['target_scale']})")
    if "confusion_matrix" in report:
        cm = report["confusion_matrix"]
        names = [r.get("name", str(r["class"])) for r in report["per_class"]]
        out.append("Confusion matrix (rows: true class, columns: predicted class)")
        cols = [Col("true \\ predicted")] + [Col(name) for name in names]
        rows = [
            [names[k], *(f"[bold]{v}[/bold]" if j == k else str(v) for j, v in enumerate(row))]
            for k, row in enumerate(cm)
        ]
        out.append(fitted_table(console, cols, rows, width))
        cols = [Col(h) for h in ("class", "precision", "recall", "f1", "support")]
        scores = {k: fmt_column([r[k] for r in report["per_class"]]) for k in ("precision", "recall", "f1")}
        rows = [
            [name, scores["precision"][i], scores["recall"][i], scores["f1"][i], str(r["support"])]
            for i, (r, name) in enumerate(zip(report["per_class"], names))
        ]
        out.append(fitted_table(console, cols, rows, width))
    return out


def _even(n: int, k: int) -> list[int]:
    """``k`` indices out of ``n``, evenly spread, the first and last included."""
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _inspect_grid(report: dict, keep: list[int], styled: bool):
    unit = "step" if report["source"] == "steps" else "epoch"
    cols = [Col("layer", "left")] + [Col(f"{unit} {report['steps'][k]}") for k in keep] + [Col("flags", "left")]
    rows = []
    for layer in report["layers"]:
        values = layer["grad_norm"]
        cells = []
        for k in keep:
            v = values[k] if k < len(values) else None
            cells.append(Text(sci(v, 3), style=norm_style(v)) if styled else sci(v, 3))
        label = f"{layer['index']} {layer['name']} {layer['activation']}"
        flags = ", ".join(layer["flags"])
        rows.append([label, *cells, Text(flags, style="bold red") if styled and flags else flags])
    return cols, rows


def _shown_note(report: dict, keep: list[int]) -> str:
    unit = "step" if report["source"] == "steps" else "epoch"
    n = len(report["steps"])
    if len(keep) == n:
        return ""
    shown = ", ".join(str(report["steps"][k]) for k in keep)
    return f"{len(keep)} of {n} recorded {unit}s shown ({unit}s {shown}); all in --json"


def inspection_table(console: Console, report: dict) -> Table:
    """Layers by steps (or epochs): as many columns as fit, evenly spread, the first and last always in."""
    unit = "step" if report["source"] == "steps" else "epoch"
    title = f"Kernel gradient norm by layer and {unit}"
    n = len(report["steps"])
    width = console.width
    for k in range(n, 0, -1):
        keep = _even(n, k)
        cols, rows = _inspect_grid(report, keep, styled=True)
        table = _table(cols, rows, title, _shown_note(report, keep) or None)
        if natural_width(console, table) <= width:
            return table
        if k <= 2:  # first and last step do not fit: print whole, the terminal wraps the lines
            table.natural_width = natural_width(console, table)
            return table
    return table


def plain_table(cols: list[Col], rows: list[list[str]]) -> list[str]:
    """A fixed-width text table: every cell whole, whatever the terminal's width."""
    widths = [max([len(c.header)] + [len(str(r[j])) for r in rows]) for j, c in enumerate(cols)]

    def line(cells):
        parts = [str(v).ljust(w) if c.justify == "left" else str(v).rjust(w) for v, w, c in zip(cells, widths, cols)]
        return "  ".join(parts).rstrip()

    return [line([c.header for c in cols]), line(["-" * w for w in widths])] + [line(r) for r in rows]


def inspection_plain(report: dict) -> list[str]:
    unit = "step" if report["source"] == "steps" else "epoch"
    keep = _even(len(report["steps"]), MAX_PLAIN_COLUMNS)
    cols, rows = _inspect_grid(report, keep, styled=False)
    out = [f"Kernel gradient norm by layer and {unit}"] + plain_table(cols, rows)
    note = _shown_note(report, keep)
    if note:
        out.append(note)
    return out + inspection_text(report)


def inspection_text(report: dict) -> list[str]:
    """The flags with their numbers, and the advice with its overrides, as lines."""
    out = []
    if report.get("nonfinite"):
        out.append(f"Stopped: {report['nonfinite']['message']}")
    details = [f"  {layer['name']} ({layer['index']}): {d}" for layer in report["layers"] for d in layer["details"]]
    if not details:
        out.append("No flags: no layer is vanishing, exploding, collapsed, dead, saturated or stalled.")
    else:
        out.append("Flags:")
        out += details
    if report["advice"]:
        tried = report.get("tried") is not None
        how = "ranked by what each did below" if tried else "--try-advice ranks them by what they do here"
        out.append(f"Advice, causes first (each with the overrides that apply it; {how}):")
        for k, a in enumerate(report["advice"], start=1):
            out.append(f"  {k}. {a['text']}")
            if a.get("pasteable", True):
                out.append(f"     {a['command']}")
            else:
                out.append(f"     ({a['change']}: too long to paste; --try-advice --write-config FILE writes it)")
    return out


def flag_groups(items: list[dict], order: list[str] | None = None) -> str:
    """``vanishing: dense to dense_2, dense_4 to dense_13 (13 layers)``: flagged layers grouped by flag.

    ``order``: every watched layer's name in model order; without it each layer is named, as no gap can be seen."""
    by_flag: dict[str, list[str]] = {}
    for item in items:
        by_flag.setdefault(item["flag"], []).append(item["layer"])
    return "; ".join(f"{flag}: {layer_span(layers, order or [])}" for flag, layers in by_flag.items()) or "-"


def try_advice_rows(report: dict) -> tuple[list[Col], list[list[str]]]:
    """One row per item tried (and per items tried together), best first; the recommended one's rank starred."""
    cols = [Col("rank"), Col("advice", "left"), Col("outcome", "left")]
    cols += [Col("cleared", "left", wrap=True), Col("remaining", "left", wrap=True), Col("new", "left", wrap=True)]
    cols.append(Col("final loss", wrap=True))
    rows = []
    order = [layer["name"] for layer in report.get("layers", [])]
    for k, t in enumerate(report.get("tried", []), start=1):
        rank = f"{t.get('rank', k)}{'*' if t.get('recommended') else ''}"
        if "error" in t:
            rows.append([rank, str(t["advice"]), "error", f"could not apply: {t['error']}", "", "", ""])
            continue
        before = "non-finite" if t["loss_before"] is None else fmt(t["loss_before"])
        after = "non-finite" if t["nonfinite"] or t["loss_after"] is None else fmt(t["loss_after"])
        rows.append(
            [
                rank,
                str(t["advice"]),
                _outcome(t),
                flag_groups(t["cleared"], order),
                flag_groups(t["remaining"], order),
                flag_groups(t["new"], order),
                f"{before} -> {after}",
            ]
        )
    return cols, rows


def _outcome(t: dict) -> str:
    """``cure``: every flag cleared, none new, finite, the loss lower; ``helps``: some of that; else ``no``."""
    if t.get("cured"):
        return "cure"
    if t["nonfinite"] or t["new"]:
        return "no"
    return "helps" if t["cleared"] else "no"


def tried_title(report: dict) -> str:
    steps = report.get("tried_steps")
    on = f" over {plural(steps, 'step')}" if steps else ""
    return (
        f"Advice tried{on}: the same data, order and seed, each item's overrides applied (items joined by + together)"
    )


def tried_footer(report: dict) -> list[str]:
    """What --try-advice recommends, and where the fixed config went."""
    best = next((t for t in report.get("tried") or [] if t.get("recommended")), None)
    if report.get("tried") is None:
        return []
    if not report["tried"]:
        return ["Nothing to try: no advice was given."]
    if best is None:
        return ["No item helped on these steps: the flags stay, or the loss ends higher."]
    what = "cures" if best.get("cured") else "helps most (not a full cure)"
    out = [f"Recommended (*): advice {best['advice']}, which {what} on this network."]
    if report.get("written"):
        out.append(f"Written with it applied: {report['written']}. Train it with: dnn train {report['written']}")
    elif "written" in report:
        out.append("--write-config: nothing written, as no item helped.")
    else:
        out.append("Write the config with it applied: --write-config FILE")
    return out


@dataclass
class Command:
    """A command line to paste: printed whole (the terminal wraps it), never broken with newlines."""

    text: str


def show(console: Console, parts: list) -> None:
    """Print each part whole: a command soft-wrapped (pasteable), a table too wide for the terminal at its width."""
    for part in parts:
        if isinstance(part, Command):
            console.print(part.text, soft_wrap=True, highlight=False, markup=False)
        elif getattr(part, "natural_width", None):
            width = console.width
            console.width = part.natural_width  # print() caps its width at the console's
            try:
                console.print(part, crop=False)
            finally:
                console.width = width
        else:
            console.print(part)


def inspection_view(console: Console, report: dict) -> list:
    """The rich view of ``dnn inspect-gradients``: the table, a legend, flags, advice, tried advice."""
    out = [inspection_table(console, report), Text.from_markup(NORM_LEGEND)]
    for line in inspection_text(report):
        if line.lstrip().startswith("--set"):
            out.append(Command(line))
        else:
            out.append(Text(line, style="bold red" if line.startswith("Stopped") else ""))
    if report.get("tried") is not None:
        cols, rows = try_advice_rows(report)
        if rows:
            out.append(fitted_table(console, cols, rows, console.width, title=tried_title(report)))
        out += [Text(line, style="bold") for line in tried_footer(report)]
    return out


def try_advice_plain(report: dict) -> list[str]:
    if report.get("tried") is None:
        return []
    if not report["tried"]:
        return tried_footer(report)
    cols, rows = try_advice_rows(report)
    return [tried_title(report), *plain_table(cols, rows), *tried_footer(report)]


def gradcheck_rows(report: dict) -> tuple[list[Col], list[list]]:
    cols = [Col("layer", "left"), Col("param", "left"), Col("checked", drop=2), Col("max rel. error")]
    cols.append(Col("max abs. error", drop=1))
    cols.append(Col(""))
    rows = []
    for r in report["rows"]:
        rows.append(
            [
                f"{r['layer_index']}: {r['layer']}",
                r["param"],
                str(r["checked"]),
                sci(r["max_rel_error"], 3),
                sci(r["max_abs_error"], 3),
                "ok" if r["passed"] else "FAIL",
            ]
        )
    return cols, rows


def gradcheck_title(report: dict) -> str:
    return f"Gradient check, float64, {plural(report['samples'], 'sample')}, tolerance {report['tolerance']:g}"


def bench_view(console: Console, report: dict) -> list:
    step = report["step_seconds"]
    head = (
        f"{report['config']}: batch {report['batch_size']}, median of {plural(report['steps'], 'step')}:"
        f" {step * 1e3:.3f} ms per step, {report['samples_per_second']:,.0f} samples/s;"
        f" {report['gflops_per_step']:.3f} GFLOP per step in matrix products, {report['achieved_gflops']:.1f} GFLOP/s"
        f" achieved against {report['matmul_peak_gflops']:.1f} GFLOP/s for the same products alone;"
        f" efficiency {report['efficiency']:.2f} (matrix-product time / step time)"
    )
    rows = [
        [part, f"{seconds * 1e3:.3f}", f"{seconds / step:.0%}"] for part, seconds in report["split_seconds"].items()
    ]
    cols = [Col("part", "left"), Col("ms"), Col("share")]
    return [head, fitted_table(console, cols, rows, console.width, title="Where a step's time goes")]


def compare_table(console: Console, report: dict) -> Table:
    """``dnn compare``: a row per run, the differing config keys as columns, then the metric."""
    metric, keys = report["metric"], report["keys"]
    best_of = {"min": min, "max": max}[report["mode"]]
    finite = [r["best"] for r in report["runs"] if r["best"] is not None and math.isfinite(r["best"])]
    winner = best_of(finite) if finite else None
    cols = [Col("run", "left")] + [Col(k.replace("training.", "").replace("optimizer.", "opt."), drop=2) for k in keys]
    cols += [Col(f"final {metric}"), Col(f"best {metric}"), Col("at epoch", drop=1), Col("epochs", drop=1)]
    cols.append(Col("time", drop=1))
    rows = []
    finals = fmt_column([r["final"] for r in report["runs"]])
    bests = fmt_column([r["best"] for r in report["runs"]])
    for i, r in enumerate(report["runs"]):
        best = Text(bests[i], style="bold green" if r["best"] == winner else "")
        params = [_param(r["params"][k]) for k in keys]
        rows.append(
            [
                r["name"],
                *params,
                finals[i],
                best,
                str(r["best_epoch"]),
                str(r["epochs"]),
                f"{r['seconds']:.2f}s" if r["seconds"] < 10 else f"{r['seconds']:.0f}s",
            ]
        )
    better = "lower" if report["mode"] == "min" else "higher"
    title = f"{plural(len(report['runs']), 'run')} by {metric} ({better} is better)"
    return fitted_table(console, cols, rows, console.width, title=title)


def _param(value) -> str:
    if isinstance(value, dict):
        return value.get("name", str(value))
    return fmt(value) if isinstance(value, float) else str(value)


class SweepView:
    """What a sweep shows while it runs: a table of trials (status, parameters, epoch, metric, best so far), the
    newest best highlighted, on a terminal; a line per finished trial elsewhere; nothing with ``quiet``."""

    def __init__(self, metric: str, mode: str, console: Console | None = None, quiet: bool = False):
        self.metric, self.mode, self.quiet = metric, mode, quiet
        self.console = console
        self.stream = sys.stdout  # kept: the sweep quiets stdout while Tune runs
        if console is not None:
            console.file = self.stream  # a console left to look sys.stdout up would write into that quiet
        self.trials: dict[str, dict] = {}
        self.best: tuple[float, str] | None = None
        self.live = None
        if console is not None and console.is_terminal and not quiet:
            self.live = Live(self._table(), console=console, refresh_per_second=4, vertical_overflow="crop")
            self.live.start()

    def result(self, trial_id, params, epoch, value) -> None:
        t = self.trials.setdefault(trial_id, {"params": params, "status": "running", "best": None})
        t["epoch"], t["value"] = epoch, value
        if value is not None and math.isfinite(value) and abs(value) < 1e299:
            better = t["best"] is None or (value < t["best"] if self.mode == "min" else value > t["best"])
            if better:
                t["best"] = value
            if self.best is None or (value < self.best[0] if self.mode == "min" else value > self.best[0]):
                self.best = (value, trial_id)
        self._refresh()

    def ended(self, trial_id, status) -> None:
        t = self.trials.setdefault(trial_id, {"params": {}, "best": None, "epoch": None, "value": None})
        t["status"] = status
        if self.live is None and not self.quiet:
            params = ", ".join(f"{k}={_param(v)}" for k, v in t["params"].items())
            print(
                f"trial {trial_id} {status}: {params}; best {self.metric} {fmt(t['best'])}",
                file=self.stream,
                flush=True,
            )
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._table())

    def _table(self):
        keys = sorted({k for t in self.trials.values() for k in t["params"]})
        cols = [Col("trial", "left"), Col("status", "left")] + [Col(k.split(".")[-1], drop=2) for k in keys]
        cols += [Col("epoch"), Col(self.metric), Col("best")]
        rows = []
        values = fmt_column([t.get("value") for t in self.trials.values()])
        bests = fmt_column([t["best"] for t in self.trials.values()])
        for i, (trial_id, t) in enumerate(self.trials.items()):
            style = "bold green" if self.best and self.best[1] == trial_id else ""
            cells = [trial_id, t["status"], *(_param(t["params"].get(k)) for k in keys)]
            cells += [str(t.get("epoch") or "-"), values[i], Text(bests[i], style=style)]
            rows.append(cells)
        width = self.console.width if self.console is not None else 120
        return fitted_table(self.console or Console(), cols, rows[-40:], width, title=f"sweep by {self.metric}")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def sweep_table(console: Console, report: dict) -> Table:
    """The leaderboard: every trial by its metric, the best first; failed and pruned ones last, with the reason."""
    keys = sorted({k for t in report["trials"] for k in t["params"]})
    reverse = report["mode"] == "max"
    done = [t for t in report["trials"] if t["status"] == "completed" and t["metric"] is not None]
    rest = [t for t in report["trials"] if t not in done]
    ordered = sorted(done, key=lambda t: t["metric"], reverse=reverse) + rest
    cols = [Col("#"), Col("trial", "left", drop=3)] + [Col(k.split(".")[-1]) for k in keys]
    cols += [
        Col(report["metric"]),
        Col("mean ± spread", drop=2),
        Col("epochs", drop=1),
        Col("status", "left", wrap=True),
    ]
    rows = []
    metrics = fmt_column([t["metric"] for t in ordered])
    for k, t in enumerate(ordered, start=1):
        status = t["status"] + (f": {t['reason']}" if t.get("reason") else "")
        spread = "-" if t.get("mean") is None else f"{fmt(t['mean'])} ± {fmt(t['spread'])}"
        rows.append(
            [
                str(k),
                t["id"],
                *(_param(t["params"].get(k2)) for k2 in keys),
                metrics[k - 1],
                spread,
                str(t.get("epochs") or 0),
                status,
            ]
        )
    title = f"Sweep: {plural(len(report['trials']), 'trial')} by {report['metric']} ({report['mode']})"
    return fitted_table(console, cols, rows, console.width, title=title)


def _short_path(text: str) -> str:
    """A path relative to the current directory when it lies below it (shorter, and what a user types)."""
    import os

    rel = os.path.relpath(text)
    return rel if not rel.startswith("..") else text


def data_list_view(console: Console, report: dict) -> list:
    """``dnn data list``: a row per dataset (kind, task, size, where found or how to get it, its config)."""
    kinds = {"ships": "ships", "fetch": "download", "external": "bring"}
    cols = [Col("dataset", "left"), Col("kind", "left"), Col("task", "left", drop=2)]
    cols.append(Col("samples x features", "left", drop=3))
    cols += [Col("found in", "left", wrap=True), Col("configs/", "left", drop=1)]
    rows, notes = [], []
    for d in report["datasets"]:
        if d["present"]:
            where = Text(_short_path(d["folder"]), style="green")
            bad = [c["file"] for c in d["checksums"] or [] if c["ok"] is False]
            if bad:
                where = Text(f"{_short_path(d['folder'])} (checksum differs: {', '.join(bad)})", style="red")
        elif d["folder"] is not None:
            where = Text(f"{_short_path(d['folder'])}, without {', '.join(d['missing'])}", style="yellow")
            notes.append(f"{d['name']}: {d['get']}")
        else:
            where = Text("not here", style="yellow")
            notes.append(f"{d['name']}: {d['get']}")
        config = (d["config"] or "").removeprefix("configs/")
        rows.append([d["name"], kinds[d["availability"]], d["task"], d["size"], where, config])
    var = report["variable"]
    order = f"$DNN_DATASETS ({var})" if var else "$DNN_DATASETS (not set)"
    title = f"{plural(len(rows), 'dataset')}, looked for in {order}, then in data/"
    out: list = [fitted_table(console, cols, rows, console.width, title=title)]
    out += [Text(n) for n in notes]
    if any(d["checksums"] for d in report["datasets"]):
        checked = sum(1 for d in report["datasets"] for c in d["checksums"] or [] if c["ok"])
        agree = "matches its" if checked == 1 else "match their"
        out.append(Text(f"{plural(checked, 'file')} {agree} published checksums"))
    return out
