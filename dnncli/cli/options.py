"""What every command shares: the options declared once (``--set``, ``--json``, ``--fail-on``, ``--threads``), the
exit codes, ``handles_errors`` (a ``DnnError`` is one line and exit 2; ``--debug`` shows the traceback), the refusal
of a file that exists, and the ``--fail-on`` gate."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.completion import complete_flags, complete_set
from dnncli.errors import MAX_INT

EXIT_USAGE = 2
EXIT_NONFINITE = 3
STATE = {"debug": False}  # set by the app's --debug, read when an error is turned into its line

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY.PATH=VALUE",
        help="Override a config value (YAML), e.g. optimizer.learning_rate=0.01; repeatable.",
        autocompletion=complete_set,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _threads(value: str | None) -> str | int | None:
    """``--threads``: ``auto`` or a count of threads >= 1."""
    if value is None or value == "auto":
        return value
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 1 <= int(value) <= MAX_INT:
        shown = repr(value) if len(value) <= 40 else f"{value[:20]!r}... ({len(value)} characters)"
        raise typer.BadParameter(f"auto or a number of threads from 1 to {MAX_INT:,}. Received: {shown}")
    return int(value)


ThreadsOption = Annotated[
    str | None,
    typer.Option(
        "--threads",
        metavar="auto|N",
        callback=_threads,
        help="BLAS threads for the matrix products (training.threads): auto chooses while training, at most the"
        " CPUs this process may use; N fixes them. Default: the config's (auto where it says nothing).",
    ),
]
FailOnOption = Annotated[
    str | None,
    typer.Option(
        "--fail-on",
        metavar="FLAGS",
        help="Exit 1 if any of these flags is still raised at the end (comma list of vanishing, exploding,"
        " collapsed, dead, saturated, stalled, nonfinite; or any): a CI gate. A flag that cleared does not count.",
        autocompletion=complete_flags,
    ),
]
FailOnAnyOption = Annotated[
    str | None,
    typer.Option(
        "--fail-on-any",
        metavar="FLAGS",
        help="Exit 1 if any of these flags was raised at any time, transient ones at initialization included.",
        autocompletion=complete_flags,
    ),
]


def threads_set(threads: str | int | None) -> list[str]:
    """``--threads auto|N`` as the ``--set`` override it stands for."""
    return [] if threads is None else [f"training.threads={threads}"]


def fail(message: str, code: int = EXIT_USAGE):
    """The command's end: ``error: message`` on standard error, and ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _numpy_quiet(quiet: bool):
    """NumPy's RuntimeWarning lines ("overflow encountered in matmul") off, unless --debug: every result is checked
    for NaN and infinity where it is made, and the tool says where and what to change; the raw line says neither."""
    if not quiet:
        yield
        return
    import warnings

    import numpy as np

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def handles_errors(fn):
    """Turn DnnError into one line and exit code 2 (a traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from dnncli.errors import DnnError, warnings_as_lines

        try:
            with warnings_as_lines(lambda line: typer.echo(line, err=True)), _numpy_quiet(not STATE["debug"]):
                return fn(*args, **kwargs)
        except DnnError as err:
            if STATE["debug"]:
                raise
            fail(str(err))

    return wrapper


def refuse_existing(path: Path | None, option: str) -> None:
    """Before the work: a command without ``--force`` never writes over a file (nor into a FIFO or directory)."""
    from dnncli.files import check_replaceable

    if path is None:
        return
    check_replaceable(path, option)
    if path.exists():
        fail(f"{option} {path}: exists already; choose another file.")


def fail_on_flags(text: str | None, option: str = "--fail-on") -> set[str]:
    """The flags named by ``--fail-on`` or ``--fail-on-any`` (a comma list, or ``any``)."""
    from dnncli.diagnostics.rules import FLAGS
    from dnncli.errors import suggest

    if text is None:
        return set()
    names = {n.strip() for n in text.split(",") if n.strip()}
    if "any" in names:
        return set(FLAGS)
    for name in names:
        if name not in FLAGS:
            fail(f"{option}: unknown flag {name!r}.{suggest(name, FLAGS)} Flags: {', '.join(FLAGS)}, or any.")
    if not names:
        fail(f"{option} needs flag names: {', '.join(FLAGS)}, or any.")
    return names


def gate(flags: list[dict], fail_on: set[str], fail_on_any: set[str], of_run: str = "") -> None:
    """Exit 1 for ``--fail-on`` (the flags still active at the end, transient ones aside) or ``--fail-on-any``
    (every flag ever raised); ``flags``: each flag's record (``flag``, ``active_at_end``, ``transient``); ``of_run``:
    the run directory of a training run, which is kept."""
    active = {f["flag"] for f in flags if f["active_at_end"] and not f.get("transient", False)}
    ever = {f["flag"] for f in flags}
    for option, hit in (("--fail-on", active & fail_on), ("--fail-on-any", ever & fail_on_any)):
        if hit:
            what = "active at the end" if option == "--fail-on" else "raised"
            if of_run:
                what += " of the run" if option == "--fail-on" else " during the run"
            kept = f" (the run is kept in {of_run})." if of_run else ""
            typer.echo(f"{option}: {what}: {', '.join(sorted(hit))}{kept}", err=True)
            raise typer.Exit(1)
