"""Shell completion that knows the project, on Typer's own (``dnn --install-completion``, ``--show-completion``; bash,
zsh, fish): ``--set`` completes the dotted keys of the config named on the command line, then the names a key
takes; ``RUN_DIR`` arguments complete run directories; ``--fail-on`` the flag names; ``dnn data fetch`` the
datasets. Each answers in a fresh process without NumPy (the schema is a JSON file), and a completer that cannot
answer (no config yet, a file that is not YAML) offers nothing rather than a traceback.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from typer.core import TyperGroup

RUN_MARKERS = ("checkpoint.npz", "model.npz")  # with config.yaml: a run directory (runfiles.RUN_FILES)
SCAN_LIMIT = 3000  # directories looked at, at most, for run directories
DEPTH = 4  # levels below the typed folder


def quiet(fn):
    """A completer that offers nothing instead of failing: completion must never print a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return list(fn(*args, **kwargs))
        except Exception:
            return []

    return wrapper


def _config_of(ctx) -> Path | None:
    """The config this command line names: its CONFIG argument (or a run directory's config.yaml). While an
    option's value is completed, Click leaves the words before it unparsed (in ``ctx.args``): they are looked at too."""
    params = ctx.params if ctx is not None else {}
    words = [params.get(k) for k in ("config", "target", "sweep_file")] + list(getattr(ctx, "args", None) or [])
    for value in words:
        if not value or str(value).startswith("-"):
            continue
        path = Path(value)
        if path.is_dir() and (path / "config.yaml").is_file():
            return path / "config.yaml"
        if path.suffix in (".yaml", ".yml"):
            return path
    return None


@quiet
def complete_set(ctx, incomplete: str):
    """``--set``: the dotted keys of the config on the command line, then (after ``=``) the names the key takes."""
    from dnncli.experiment.keys import complete
    from dnncli.experiment.modeline import load_schema
    from dnncli.yamlfile import parse_yaml

    path = _config_of(ctx)
    if path is None or not path.is_file() or path.stat().st_size > 4 << 20:
        return []
    config = parse_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        return []
    return complete(load_schema(), config, incomplete)


@quiet
def complete_flags(incomplete: str):
    """``--fail-on``, ``--fail-on-any``: a comma list of flag names, or ``any``."""
    from dnncli.diagnostics.flags import FLAGS

    head, _, last = incomplete.rpartition(",")
    given = set(head.split(",")) if head else set()
    words = [*FLAGS, "any"] if not head else [f for f in FLAGS if f not in given]
    return [f"{head + ',' if head else ''}{w}" for w in words if w.startswith(last)]


def _is_run(folder: Path) -> bool:
    return (folder / "config.yaml").is_file() and any((folder / m).is_file() for m in RUN_MARKERS)


def _is_sweep(folder: Path) -> bool:
    return (folder / "sweep.yaml").is_file() and (folder / "trials").is_dir()


def _folders(incomplete: str, keep) -> list[str]:
    """Folders under the one typed so far (``runs/``, or here), up to ``DEPTH`` levels, for which ``keep`` holds;
    written as typed (relative, or from ``~``)."""
    typed = os.path.expanduser(incomplete)
    base = typed if typed.endswith("/") or not typed else os.path.dirname(typed) + ("/" if "/" in typed else "")
    shown = incomplete[: len(incomplete) - (len(typed) - len(base))] if typed != incomplete else base
    start = Path(base or ".")
    found, seen, level = [], 0, [start]
    for _ in range(DEPTH + 1):
        deeper = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                seen += 1
                if seen > SCAN_LIMIT or entry.name.startswith(".") or not entry.is_dir():
                    continue
                path = Path(entry.path)
                if keep(path):
                    found.append(shown + os.path.relpath(entry.path, start))
                elif not _is_run(path):
                    deeper.append(path)
        level = deeper
    return [f for f in found if f.startswith(incomplete)]


@quiet
def complete_run_dir(incomplete: str):
    """A run directory: a folder holding a run's config.yaml and its weights or checkpoint."""
    return _folders(incomplete, _is_run)


@quiet
def complete_run_or_sweep(incomplete: str):
    """A run directory, or a sweep's (``dnn compare``)."""
    return _folders(incomplete, lambda p: _is_run(p) or _is_sweep(p))


@quiet
def complete_config_or_run(incomplete: str):
    """A YAML config, or a run directory."""
    typed = os.path.expanduser(incomplete)
    folder = Path(typed if typed.endswith("/") else os.path.dirname(typed) or ".")
    files = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith((".yaml", ".yml")):
            text = os.path.join(os.path.dirname(incomplete), entry.name) if incomplete else entry.name
            files.append(text)
        elif entry.is_dir() and not entry.name.startswith("."):
            files.append(os.path.join(os.path.dirname(incomplete), entry.name) + "/")
    return [f for f in files if f.startswith(incomplete)]


@quiet
def complete_dataset(incomplete: str):
    """``dnn data fetch``: the datasets it downloads, the keys of ``DATASETS`` in ``dnncli/data/fetch.py``, read from
    its source (importing it would load the data floor, NumPy with it)."""
    import ast

    source = (Path(__file__).resolve().parents[1] / "data" / "fetch.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DATASETS" for t in node.targets):
            names = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            return [name for name in names if name.startswith(incomplete)]
    return []


def _bash_class():
    """Typer's bash completion, with a word that bash split at ``=`` (``key=value`` is three words to it) put back
    together, and the answers cut to the part after the ``=`` (what bash replaces)."""
    try:
        from typer._click.shell_completion import add_completion_class, split_arg_string
        from typer._completion_classes import BashComplete
    except ImportError:  # another Typer: its own bash completion, as it is
        return None

    class DnnBashComplete(BashComplete):
        def get_completion_args(self):
            words = split_arg_string(os.environ.get("COMP_WORDS", ""))
            cword = int(os.environ.get("COMP_CWORD", len(words) - 1))
            words = words[: cword + 1] + ([""] if cword >= len(words) else [])
            merged: list[str] = []
            for i, word in enumerate(words):
                if word == "=" and merged and i > 1:
                    merged[-1] += "="
                    self._glue = True
                elif merged and merged[-1].endswith("=") and getattr(self, "_glue", False):
                    merged[-1] += word
                    self._glue = False
                else:
                    merged.append(word)
                    self._glue = False
            return merged[1:-1], merged[-1]

        def format_completion(self, item):
            value = item.value
            cut = self._incomplete.rfind("=")
            return value[cut + 1 :] if cut >= 0 and value.startswith(self._incomplete[: cut + 1]) else value

        def complete(self):
            args, self._incomplete = self.get_completion_args()
            return "\n".join(self.format_completion(i) for i in self.get_completions(args, self._incomplete))

    add_completion_class(DnnBashComplete, "bash")
    return DnnBashComplete


def _words_as_typed() -> None:
    """Completing, the words of the line are taken as typed: Typer's coercion of each parameter (Pydantic, imported
    and built on first use) would cost a completion most of its time, and a completer reads paths and names itself.
    Only in the completing process, which ends with its answer."""
    try:
        from typer._coercion import RuntimeParam
        from typer.core import _TyperParameter
    except ImportError:  # another Typer: its own parsing, as it is
        return

    class AsTyped(RuntimeParam):
        def __init__(self):
            pass

        def _coerce_value(self, value, param, ctx):
            return value

    as_typed = AsTyped()
    _TyperParameter.get_runtime_param = lambda self: as_typed


class DnnGroup(TyperGroup):
    """The app's group: Typer's, with the bash completion above registered when a completion is asked for, and the
    line's words read as typed."""

    def _main_shell_completion(self, ctx_args, prog_name, complete_var=None):
        if os.environ.get(complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()):
            _bash_class()
            _words_as_typed()
        return super()._main_shell_completion(ctx_args, prog_name, complete_var)
