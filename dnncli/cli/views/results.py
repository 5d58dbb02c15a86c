"""``dnn summary``, ``eval`` and ``data list``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dnncli.cli.views.numbers import fmt_column
from dnncli.cli.views.tables import Col, fitted_table
from dnncli.errors import plural
from dnncli.experiment.evaluate import UNITS_NOTE


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
