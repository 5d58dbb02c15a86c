"""The layer panel's parts: a gradient norm's colour and trend, a layer's flags written short, which layers fit."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dnncli.cli.views.numbers import sci
from dnncli.cli.views.tables import Col, fitted_table, natural_width, rich_table
from dnncli.diagnostics.rules import layer_span

SPARKS = "▁▂▃▄▅▆▇█"


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


def pick_layers(layers, room: int) -> list:
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


def layer_panel(console: Console, layers, width: int, note: str) -> Table:
    """The layer panel; its flags shortened before any column is left out: the columns are their evidence."""
    rows = layer_rows(layers)
    if natural_width(console, rich_table(LAYER_COLS, rows, None, None)) > width:
        rows = layer_rows(layers, short=True)
    return fitted_table(console, LAYER_COLS, rows, width, note=note)


def flag_groups(items: list[dict], order: list[str] | None = None) -> str:
    """``vanishing: dense to dense_2, dense_4 to dense_13 (13 layers)``: flagged layers grouped by flag.

    ``order``: every watched layer's name in model order; without it each layer is named, as no gap can be seen."""
    by_flag: dict[str, list[str]] = {}
    for item in items:
        by_flag.setdefault(item["flag"], []).append(item["layer"])
    return "; ".join(f"{flag}: {layer_span(layers, order or [])}" for flag, layers in by_flag.items()) or "-"
