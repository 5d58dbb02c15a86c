"""Expectations judged: a run's verdicts (``dnn train`` with ``expect:``, ``dnn check``), a sweep's comparisons, and
the course's claims (``dnn course``)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dnncli.cli.views.numbers import fmt
from dnncli.cli.views.tables import Col, fitted_table
from dnncli.errors import plural


def _verdict_cell(passed: bool) -> Text:
    return Text("pass", style="bold green") if passed else Text("FAIL", style="bold red")


def verdict_table(console: Console, report) -> Table:
    """A ``CheckReport``: each expectation, what was measured, pass or fail (and why, where one says why)."""
    why = any(v.detail for v in report.verdicts)
    cols = [Col("expected", "left", wrap=True), Col("measured", "left", wrap=True), Col("verdict", "left")]
    cols += [Col("why", "left", wrap=True, drop=1)] if why else []
    rows = []
    for v in report.verdicts:
        measured = v.measured if v.measured is not None else fmt(v.value)
        rows.append([v.expected, measured, _verdict_cell(v.passed)] + ([v.detail] if why else []))
    passed = sum(v.passed for v in report.verdicts)
    claim = f" ({report.claim})" if report.claim else ""
    title = f"Expectations{claim}: {passed} of {plural(len(report.verdicts), 'expectation')} hold"
    return fitted_table(console, cols, rows, console.width, title=title)


def comparison_table(console: Console, verdicts: list, title: str = "") -> Table:
    """A sweep's ``expect:`` judged (``Comparison`` verdicts): each comparison read aloud, its two sides' mean ±
    spread over their trials, and the verdict with its reason."""
    cols = [
        Col("claim", "left", wrap=True),
        Col("this side", "left"),
        Col("other side", "left"),
        Col("verdict", "left"),
    ]
    cols.append(Col("why", "left", wrap=True, drop=1))
    rows = []
    for v in verdicts:
        claim = f"{v.claim}: {v.sentence}" if v.claim else v.sentence
        rows.append([claim, _side(v.side), _side(v.other), _verdict_cell(v.passed), v.reason])
    passed = sum(v.passed for v in verdicts)
    title = title or f"Expectations: {passed} of {plural(len(verdicts), 'comparison')} hold"
    return fitted_table(console, cols, rows, console.width, title=title)


def _side(side) -> str:
    return f"{side.label}: {_spread(side)}"


def experiments_table(console: Console, experiments: list) -> Table:
    """``dnn course --list``: each experiment, a config or a sweep, where its claim comes from and what it checks."""
    cols = [Col("experiment", "left"), Col("kind", "left", drop=2), Col("lesson", "left", wrap=True)]
    cols += [Col("the lesson says", "left", wrap=True, drop=1), Col("checked", "left", wrap=True)]
    rows = [[e.name, e.kind, e.lesson, e.says, "; ".join(e.claims)] for e in experiments]
    title = f"The course: {plural(len(experiments), 'experiment')} (dnn course --run NAME, or --all)"
    return fitted_table(console, cols, rows, console.width, title=title)


def course_table(console: Console, report) -> list:
    """``dnn course --run/--all``: a row per claim (experiment, claim, the comparison read aloud, the measurement on
    each side, verdict and why), then the totals."""
    cols = [Col("experiment", "left"), Col("claim", "left", wrap=True), Col("checked", "left", wrap=True, drop=2)]
    cols += [Col("measured", "left", wrap=True), Col("verdict", "left"), Col("why", "left", wrap=True, drop=1)]
    rows = []
    held = total = 0
    for e in report.experiments:
        for claim, checked, measured, passed, why in _claim_rows(e):
            rows.append([e.experiment.name, claim, checked, measured, _verdict_cell(passed), why])
            held, total = held + passed, total + 1
    runs = sum(e.runs for e in report.experiments)
    title = f"The course, reproduced: {held} of {plural(total, 'claim')} hold"
    caption = (
        f"{plural(len(report.experiments), 'experiment')}, {plural(runs, 'training run')}, {report.seconds:.0f} s;"
        " measured: mean ± spread (standard deviation) over the n trials (seeds) of each side"
    )
    return [fitted_table(console, cols, rows, console.width, title=title, note=caption)]


def _claim_rows(e) -> list[tuple]:
    if e.check is not None:
        claim = e.check.claim or e.experiment.name
        out = []
        for v in e.check.verdicts:
            measured = v.measured if v.measured is not None else fmt(v.value)
            out.append((claim, v.expected, measured, v.passed, v.detail))
        return out
    rows = []
    for v in e.comparisons:
        measured = f"{_spread(v.side)} vs {_spread(v.other)}"
        rows.append((v.claim or v.sentence, v.sentence, measured, v.passed, v.reason))
    return rows


def _spread(side) -> str:
    if side.mean is None:
        return "not measured"
    if side.never:
        return f"never, in {side.never} of {side.n}" if side.never == side.n else f"{side.never} of {side.n} never"
    spread = "?" if side.spread is None else fmt(side.spread)
    return f"{fmt(side.mean)} ± {spread} (n={side.n})"
