"""``dnn compare`` and ``dnn sweep``: runs side by side, a sweep's trials while it runs and its leaderboard."""

from __future__ import annotations

import math
import sys

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dnncli.cli.views.numbers import fmt, fmt_column
from dnncli.cli.views.tables import Col, fitted_table
from dnncli.errors import plural


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
        # the sweep quiets sys.stdout while Tune runs: the stream is taken now, and a console given here is made
        # on it (new_console(file=sys.stdout)), not left to look sys.stdout up later
        self.stream = console.file if console is not None else sys.stdout
        self.trials: dict[str, dict] = {}
        self.best: tuple[float, str] | None = None
        self.live = None
        if console is not None and console.is_terminal and not quiet:
            self.live = Live(self.rich_table(), console=console, refresh_per_second=4, vertical_overflow="crop")
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
            self.live.update(self.rich_table())

    def rich_table(self):
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


def sweep_table(console: Console, report) -> Table:
    """The leaderboard (a ``SweepReport``): every trial by its metric, the best first; failed and pruned ones last,
    with the reason."""
    keys = sorted({k for t in report.trials for k in t.params})
    done = [t for t in report.trials if t.status == "completed" and t.metric is not None]
    rest = [t for t in report.trials if t not in done]
    ordered = sorted(done, key=lambda t: t.metric, reverse=report.mode == "max") + rest
    cols = [Col("#"), Col("trial", "left", drop=3)] + [Col(k.split(".")[-1]) for k in keys]
    cols += [
        Col(report.metric),
        Col("mean ± spread", drop=2),
        Col("epochs", drop=1),
        Col("status", "left", wrap=True),
    ]
    rows = []
    metrics = fmt_column([t.metric for t in ordered])
    for k, t in enumerate(ordered, start=1):
        status = t.status + (f": {t.reason}" if t.reason else "")
        spread = "-" if t.mean is None else f"{fmt(t.mean)} ± {fmt(t.spread)}"
        rows.append(
            [
                str(k),
                t.id,
                *(_param(t.params.get(k2)) for k2 in keys),
                metrics[k - 1],
                spread,
                str(t.epochs or 0),
                status,
            ]
        )
    title = f"Sweep: {plural(len(report.trials), 'trial')} by {report.metric} ({report.mode})"
    return fitted_table(console, cols, rows, console.width, title=title)
