"""``dnn inspect-gradients``, ``gradcheck`` and ``bench``: layers by steps (as many columns as fit, evenly spread),
the flags and the advice, the advice tried; plain text when piped."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dnncli.cli.views.layers import NORM_LEGEND, flag_groups, norm_style
from dnncli.cli.views.numbers import fmt, sci
from dnncli.cli.views.tables import Col, Command, even_indices, fitted_table, natural_width, plain_table, rich_table
from dnncli.diagnostics.inspection_report import InspectionReport
from dnncli.errors import plural

MAX_PLAIN_COLUMNS = 12  # step or epoch columns of a plain inspect table


def _inspect_grid(report: InspectionReport, keep: list[int], styled: bool):
    unit = report.unit
    cols = [Col("layer", "left")] + [Col(f"{unit} {report.steps[k]}") for k in keep] + [Col("flags", "left")]
    rows = []
    for layer in report.layers:
        values = layer.grad_norm
        cells = []
        for k in keep:
            v = values[k] if k < len(values) else None
            cells.append(Text(sci(v, 3), style=norm_style(v)) if styled else sci(v, 3))
        label = f"{layer.index} {layer.name} {layer.activation}"
        flags = ", ".join(layer.flags)
        rows.append([label, *cells, Text(flags, style="bold red") if styled and flags else flags])
    return cols, rows


def _shown_note(report: InspectionReport, keep: list[int]) -> str:
    unit = report.unit
    n = len(report.steps)
    if len(keep) == n:
        return ""
    shown = ", ".join(str(report.steps[k]) for k in keep)
    return f"{len(keep)} of {n} recorded {unit}s shown ({unit}s {shown}); all in --json"


def inspection_table(console: Console, report: InspectionReport) -> Table:
    """Layers by steps (or epochs): as many columns as fit, evenly spread, the first and last always in."""
    unit = report.unit
    title = f"Kernel gradient norm by layer and {unit}"
    n = len(report.steps)
    width = console.width
    for k in range(n, 0, -1):
        keep = even_indices(n, k)
        cols, rows = _inspect_grid(report, keep, styled=True)
        table = rich_table(cols, rows, title, _shown_note(report, keep) or None)
        if natural_width(console, table) <= width:
            return table
        if k <= 2:  # first and last step do not fit: print whole, the terminal wraps the lines
            table.natural_width = natural_width(console, table)
            return table
    return table


def inspection_plain(report: InspectionReport) -> list[str]:
    unit = report.unit
    keep = even_indices(len(report.steps), MAX_PLAIN_COLUMNS)
    cols, rows = _inspect_grid(report, keep, styled=False)
    out = [f"Kernel gradient norm by layer and {unit}"] + plain_table(cols, rows)
    note = _shown_note(report, keep)
    if note:
        out.append(note)
    return out + inspection_text(report)


def _unlearned(report: InspectionReport) -> list[str]:
    """With no flag: a network that still knows nothing at the end is said to, the penalty named where it dwarfs
    the data loss (an l1 of 1.0 raises no gradient flag: its gradient is all penalty)."""
    span = report.loss
    if span is None or not span.knows_nothing:
        return []
    steps = f" in these {plural(report.steps_run, 'step')}" if report.steps_run else ""
    line = (
        f"The data loss ended at {fmt(span.final_data)}, no lower than an uninformed model's"
        f" ({fmt(span.uninformed)}): nothing learned yet{steps}."
    )
    penalty = (span.final or 0.0) - span.final_data
    if penalty > span.final_data:
        line += (
            f" The regularization penalty ({fmt(penalty)}) is {penalty / span.final_data:.3g}x the data loss: the"
            " kernel_regularizer factors outweigh the data (Keras's default is 0.01)."
        )
    return [
        line,
        "A longer probe (--steps) tells a plateau from a network that cannot learn; dnn doctor checks the data's"
        " scale, the learning rate and the loss against the output.",
    ]


def inspection_text(report: InspectionReport) -> list[str]:
    """The flags with their numbers, and the advice with its overrides, as lines."""
    out = []
    if report.nonfinite is not None:
        out.append(f"Stopped: {report.nonfinite.message}")
    details = [f"  {layer.name} ({layer.index}): {d}" for layer in report.layers for d in layer.details]
    if not details:
        out.append("No flags: no layer is vanishing, exploding, collapsed, dead, saturated or stalled.")
        out += _unlearned(report)
    else:
        out.append("Flags:")
        out += details
    if report.advice:
        tried = report.tried is not None
        how = "ranked by what each did below" if tried else "--try-advice ranks them by what they do here"
        out.append(f"Advice, causes first (each with the overrides that apply it; {how}):")
        for k, a in enumerate(report.advice, start=1):
            out.append(f"  {k}. {a['text']}")
            if a.get("pasteable", True):
                out.append(f"     {a['command']}")
            else:
                out.append(f"     ({a['change']}: too long to paste; --try-advice --write-config FILE writes it)")
    return out


def try_advice_rows(tried: list[dict], order: list[str] | None = None) -> tuple[list[Col], list[list[str]]]:
    """One row per item tried (and per items tried together), best first; the recommended one's rank starred;
    ``order``: the layers' names in the model's order, for the flags each cleared, left or raised."""
    cols = [Col("rank"), Col("advice", "left"), Col("outcome", "left")]
    cols += [Col("cleared", "left", wrap=True), Col("remaining", "left", wrap=True), Col("new", "left", wrap=True)]
    cols.append(Col("final loss", wrap=True))
    rows = []
    for k, t in enumerate(tried, start=1):
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
    """``cure``: every flag cleared, none new, finite, the loss lower; ``helps``: a flag cleared or the loss lower,
    none new, finite, the loss not clearly higher; else ``no``."""
    if t.get("cured"):
        return "cure"
    return "helps" if t.get("helps") else "no"


def tried_title(report: InspectionReport) -> str:
    steps = report.tried_steps
    on = f" over {plural(steps, 'step')}" if steps else ""
    return (
        f"Advice tried{on}: the same data, order and seed, each item's overrides applied (items joined by + together)"
    )


def tried_footer(report: InspectionReport) -> list[str]:
    """What --try-advice recommends, and where the fixed config went."""
    best = next((t for t in report.tried or [] if t.get("recommended")), None)
    if report.tried is None:
        return []
    if not report.tried:
        return ["Nothing to try: no advice was given."]
    if best is None:
        return ["No item helped on these steps: the flags stay, or the loss ends higher."]
    what = "cures" if best.get("cured") else "helps most (not a full cure)"
    out = [f"Recommended (*): advice {best['advice']}, which {what} on this network."]
    if report.written:
        out.append(f"Written with it applied: {report.written}. Train it with: dnn train {report.written}")
    elif report.write_config:
        out.append("--write-config: nothing written, as no item helped.")
    else:
        out.append("Write the config with it applied: --write-config FILE")
    return out


def inspection_view(console: Console, report: InspectionReport) -> list:
    """The rich view of ``dnn inspect-gradients``: the table, a legend, flags, advice, tried advice."""
    out = [inspection_table(console, report), Text.from_markup(NORM_LEGEND)]
    for line in inspection_text(report):
        if line.lstrip().startswith("--set"):
            out.append(Command(line))
        else:
            out.append(Text(line, style="bold red" if line.startswith("Stopped") else ""))
    if report.tried is not None:
        cols, rows = try_advice_rows(report.tried, [layer.name for layer in report.layers])
        if rows:
            out.append(fitted_table(console, cols, rows, console.width, title=tried_title(report)))
        out += [Text(line, style="bold") for line in tried_footer(report)]
    return out


def try_advice_plain(report: InspectionReport) -> list[str]:
    if report.tried is None:
        return []
    if not report.tried:
        return tried_footer(report)
    cols, rows = try_advice_rows(report.tried, [layer.name for layer in report.layers])
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
    out = [head]
    threads = report.get("threads")
    if threads is not None:
        how = "the fastest" if threads["setting"] == "auto" else "as --threads or training.threads says"
        at = ", ".join(
            f"{count} {'thread' if int(count) == 1 else 'threads'} {seconds * 1e3:.3f} ms"
            for count, seconds in threads["step_seconds_by_threads"].items()
        )
        out.append(
            f"BLAS threads: {threads['chosen']} ({how}; {threads['usable_cpus']} usable CPUs). Step time at each"
            f" count: {at}."
        )
    return [*out, fitted_table(console, cols, rows, console.width, title="Where a step's time goes")]
