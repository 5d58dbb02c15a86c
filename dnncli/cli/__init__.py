"""The ``dnn`` command: typer commands (``app``) and the rich display, nothing else."""

from dnncli.cli.app import app, main

__all__ = ["app", "main"]
