"""Where a command's output goes: the console (a terminal's own width; piped, wide and plain, so that no table is
fitted to a guess of 80 columns), strict JSON, and ``emit``, the one way a report is shown."""

from __future__ import annotations

import sys

import typer


def new_console(file=None):
    """``file``: the stream to write to, fixed now (rich otherwise looks ``sys.stdout`` up at each write)."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(file=file)
    return Console(file=file, width=1000, no_color=True, highlight=False, soft_wrap=True)


def new_console_err():
    from rich.console import Console

    return Console(stderr=True)


def echo_json(obj) -> None:
    """Strict JSON: NaN and infinities become null (JavaScript, Go and serde refuse the bare tokens)."""
    from dnncli.strict_json import dumps

    typer.echo(dumps(obj, indent=2))


def emit(report, json_: bool, view) -> None:
    """A command's result: strict JSON (of ``report.to_dict()`` where it has one), or ``view(console, report)``'s
    parts shown whole."""
    if json_:
        echo_json(report.to_dict() if hasattr(report, "to_dict") else report)
        return
    from dnncli.cli.views.tables import show

    out = new_console()
    show(out, view(out, report))
