"""``dnn doctor``: a table of checks (verdict, the number measured, the one expected, the fix), then what each
warning and failure means, and the command that applies every fix."""

from __future__ import annotations

import shlex

from rich.console import Console
from rich.text import Text

from dnncli.cli.views.numbers import fmt
from dnncli.cli.views.tables import Col, Command, fitted_table

VERDICT_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}
LONG_COMMAND = 200  # fixes longer than this are written with --write-config, not pasted


def _expected(check) -> str:
    if check.expected is None:
        return "-"
    return f"{check.relation} {fmt(check.expected)}"


def _fix(check) -> str:
    if check.fix:
        return " ".join(f"--set {shlex.quote(o)}" for o in check.fix)
    return "-"


def doctor_table(console: Console, report):
    """The checks, a row each; the fix column wraps at its spaces, and goes where the terminal is too narrow."""
    cols = [
        Col("check", "left"),
        Col("verdict", "left"),
        Col("measured"),
        Col("expected", "left"),
        Col("fix", "left", drop=1, wrap=True),
    ]
    rows = [
        [c.name, Text(c.verdict, style=VERDICT_STYLE.get(c.verdict)), fmt(c.measured), _expected(c), _fix(c)]
        for c in report.checks
    ]
    return fitted_table(console, cols, rows, console.width)


def doctor_view(console: Console, report) -> list:
    head = (
        f"dnn doctor {report.source}: {len(report.checks)} checks, {len(report.failed)} failed,"
        f" {len(report.warned)} warned ({report.seconds:.1f} s)"
    )
    parts: list = [head, doctor_table(console, report)]
    for c in report.checks:
        if c.verdict == "ok":
            continue
        line = Text(f"{c.verdict} ", style=VERDICT_STYLE[c.verdict])
        line.append(f"{c.name}: {c.detail}.")
        if c.hint and c.hint not in c.detail:
            line.append(f" {c.hint}" if c.hint.endswith(".") else f" {c.hint}.")
        if c.fix:
            line.append(f" Fix: {_fix(c)}")
        parts.append(line)
    fixes = report.fixes()
    sets = " ".join(f"--set {shlex.quote(o)}" for o in fixes)
    if report.written:
        parts.append(f"Wrote {report.written} with every fix applied. Train it with: dnn train {report.written}")
    elif fixes and len(sets) <= LONG_COMMAND:
        parts.append("Every fix applied:")
        parts.append(Command(f"dnn train {shlex.quote(report.source)} {sets}"))
    elif fixes:
        parts.append(Command(f"Every fix applied: dnn doctor {shlex.quote(report.source)} --write-config FIXED.yaml"))
    if report.skipped_fixes:
        parts.append(f"Left out (a key set by an earlier fix): {' '.join(report.skipped_fixes)}")
    if not report.failed and not report.warned:
        parts.append("Every check passed.")
    return parts
