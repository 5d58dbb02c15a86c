"""``dnn data``: ``fetch`` a dataset, ``list`` the datasets and where each is found."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnncli.cli.completion import complete_dataset
from dnncli.cli.options import (
    handles_errors,
)
from dnncli.cli.output import emit, new_console_err


@handles_errors
def data_fetch(
    name: Annotated[str, typer.Argument(help="mnist or fashion-mnist.", autocompletion=complete_dataset)],
    dir_: Annotated[
        Path | None, typer.Option("--dir", help="Where the files go (default $DNN_DATASETS/<name>, else data/<name>).")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Download from this base URL instead of the public mirrors.")
    ] = None,
):
    """Download a dataset's four IDX files, check their md5, resume a broken download.

    Example: dnn data fetch fashion-mnist (configs that name $DNN_DATASETS/fashion-mnist then find it)
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from dnncli.data.catalog import default_directory
    from dnncli.data.fetch import fetch

    directory = dir_ or default_directory(name)
    tasks = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=new_console_err(),
        transient=False,
    ) as bar:

        def progress(file, done, total):
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done, total=total)

        report = fetch(name, directory, base_url=url, progress=progress)
    for file, status in report:
        typer.echo(f"{directory / file}: {status}, md5 verified")


@handles_errors
def data_list(
    check: Annotated[bool, typer.Option("--check", help="Also verify each present file's checksum.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object instead of the table.")] = False,
):
    """The datasets that ship, those that can be downloaded, and where each is found (or how to get it).

    A config's $DNN_DATASETS/<name>/... is looked for in $DNN_DATASETS, then in data/ beside the config
    (from its folder upwards), then in data/ in the current directory; this command looks from here.
    """
    from dnncli.cli.views.results import data_list_view
    from dnncli.data.catalog import listing

    emit(listing(Path.cwd(), check), json_, data_list_view)
