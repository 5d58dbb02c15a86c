"""The ``dnn`` command: the Typer app, ``--debug`` and ``--version``, and each command registered from its room
(``commands/``). User errors (``DnnError``) become one line on standard error and exit code 2; ``--debug`` shows
the traceback instead. A non-finite loss exits with 3, an interrupted training with 128 + the signal. Heavy modules
are imported inside the commands, so that ``dnn --help`` answers at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dnncli.cli.commands import course, data, diagnose, doctor, runs, schema, train, tune
from dnncli.cli.completion import DnnGroup
from dnncli.cli.options import STATE

app = typer.Typer(
    name="dnn",
    help=(
        "Train dense neural networks from YAML configs, on a NumPy core.\n\n"
        "Example: dnn train configs/quickstart.yaml --set training.epochs=5"
    ),
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish); completers in completion.py
    cls=DnnGroup,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # every command inherits it
)


def _print_version(value: bool):
    if value:
        from dnncli.version import __version__

        typer.echo(f"dnn {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print dnn's version and exit.")
    ] = False,
):
    """Train dense neural networks from YAML configs, on a NumPy core."""
    STATE["debug"] = debug


# the order of dnn --help
app.command()(train.train)
app.command("eval")(runs.eval_)
app.command()(course.check)
app.command()(runs.summary)
app.command()(runs.validate)
app.command()(runs.predict)
app.command("inspect-gradients")(diagnose.inspect_gradients)
app.command()(diagnose.gradcheck)
app.command()(doctor.doctor)
app.command()(runs.plot)
app.command()(runs.export)
app.command()(diagnose.bench)
app.command()(tune.compare)
app.command()(tune.sweep)
app.command("lr-find")(tune.lr_find)
app.command()(schema.schema)
app.command()(schema.init)
app.command()(course.course)

data_app = typer.Typer(
    help="Datasets: what ships, what can be downloaded, and where each is found.", no_args_is_help=True
)
data_app.command("fetch")(data.data_fetch)
data_app.command("list")(data.data_list)
app.add_typer(data_app, name="data")


def main():
    app()


if __name__ == "__main__":
    main()
