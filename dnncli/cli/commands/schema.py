"""What helps a person write a config: ``schema`` (the JSON Schema an editor reads) and ``init`` (a starter config for
the user's own data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.options import fail, handles_errors


@handles_errors
def schema(
    sweep: Annotated[bool, typer.Option("--sweep", help="The schema of a sweep file instead of a config's.")] = False,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Write it here, not to stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --out: replace an existing file.")] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="Rewrite the shipped schemas (both) in the package's schema/ and in a checkout's schema/."
        ),
    ] = False,
):
    """The JSON Schema (draft 2020-12) of a config, generated from the registries: editors complete every key and
    name from it, and any JSON Schema checker validates configs with it (CI, pre-commit).

    Configs point at it by their first line: # yaml-language-server: $schema=../schema/config.schema.json
    Example: dnn schema --out config.schema.json
    """
    from dnncli.experiment.modeline import FILES, PACKAGE_DIR, REPO_DIR
    from dnncli.experiment.schema import render
    from dnncli.files import atomic_write_text, check_target

    if update:
        if out is not None or sweep:
            fail("--update rewrites both shipped schemas; it takes no --out nor --sweep.")
        checkout = PACKAGE_DIR.parents[1] / REPO_DIR  # beside the package, in a checkout of dnncli
        folders = [PACKAGE_DIR] + ([checkout] if (PACKAGE_DIR.parents[1] / "pyproject.toml").exists() else [])
        for folder in folders:
            folder.mkdir(exist_ok=True)
            for kind, name in FILES.items():
                atomic_write_text(folder / name, render(kind))
                typer.echo(f"Wrote {folder / name}")
        return
    text = render(sweep)
    if out is None:
        typer.echo(text, nl=False)
        return
    check_target(out, force, "--out")
    atomic_write_text(out, text)
    typer.echo(f"Wrote {out}", err=True)


@handles_errors
def init(
    config: Annotated[
        Path | None,
        typer.Argument(help="The config to write (default: the data file's name, .yaml, here; or config.yaml)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", metavar="FILE", help="Your table (.csv) or arrays (.npz, x and y).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", metavar="classification|regression", help="Default: guessed from the target."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="COLUMN", help="The CSV column to predict (default: guessed).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace CONFIG if it exists.")] = False,
):
    """Write a commented starter config for your data, which dnn train runs as it is.

    The columns are read, the target guessed (and said), the scaling chosen from the data, the output layer and
    the loss from the target. Without --data: the synthetic spirals. Never replaces a file without --force.
    Example: dnn init iris.yaml --data data/iris/iris.csv && dnn train iris.yaml
    """
    from dnncli.experiment.starter import write_starter

    if target is not None and data is None:
        fail("--target names a column of --data FILE.")
    out = config or Path(f"{data.stem}.yaml" if data is not None else "config.yaml")
    said = write_starter(out, data, task, target, force)
    for line in said:
        typer.echo(f"  {line}")
    typer.echo(f"Wrote {out}. Check it with: dnn validate {out}; train it with: dnn train {out}")
