"""Ctrl-C (SIGINT) and SIGTERM (sent by timeout, SLURM, Kubernetes and Ray to stop a job) during training: the
first finishes the batch, writes the checkpoint and prints the resume command; a second stops at once."""

from __future__ import annotations

import contextlib
import signal

import typer


@contextlib.contextmanager
def stop_on_signals(request_stop, run_dir):
    """Within: a signal calls ``request_stop()`` (the trainer stops at the next batch boundary); a second raises
    KeyboardInterrupt, turned here into the resume command and exit 128 + the signal. Yields the signals received,
    in order, for the caller's exit code."""
    stopped_by: list[int] = []

    def on_signal(signum, frame):
        if stopped_by:
            raise KeyboardInterrupt
        stopped_by.append(signum)
        request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped_by
    except KeyboardInterrupt:
        typer.echo(f"Stopped at once; resume from the last checkpoint with: dnn train --resume {run_dir}", err=True)
        raise typer.Exit(128 + (stopped_by[-1] if stopped_by else signal.SIGINT)) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def exit_code(stopped_by: list[int]) -> int:
    """128 + the first signal that stopped the run (SIGINT where it stopped without one)."""
    return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
