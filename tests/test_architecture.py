"""The house has floors: each package imports only from those below it, and the engine loads nothing but NumPy."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dnncli"
# floor 0: the error type, the registries, the atomic writer, the YAML reader, strict JSON, the version; then each
# folder in order
FLOORS = {
    "errors": 0,
    "registry": 0,
    "files": 0,
    "yamlfile": 0,
    "strict_json": 0,
    "version": 0,
    "nn": 1,
    "train": 2,
    "data": 3,
    "diagnostics": 4,
    "experiment": 5,
}
FLOORS["cli"] = 6


def _floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.get(parts[1]) if parts[0] == "dnncli" and len(parts) > 1 else None


def test_every_module_imports_only_from_its_floor_or_below():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        floor = _floor(module)
        if floor is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dnncli"):
                targets = [node.module] if node.module != "dnncli" else [f"dnncli.{a.name}" for a in node.names]
                upward += [(module, t) for t in targets if (_floor(t) or 0) > floor]
    assert not upward, upward


def test_the_engine_loads_no_yaml_typer_rich_or_matplotlib():
    code = (
        "import sys, dnncli.nn, dnncli.nn.model, dnncli.nn.optimizers, dnncli.train.trainer;"
        "print(sorted(m for m in ('yaml', 'typer', 'rich', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_starts_without_numpy():
    # dnn --help answers at once: heavy modules load inside the commands that need them
    code = "import sys, dnncli.cli; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


MAX_LINES = 400
# cli/ has rooms, each importing only from those below: views (what is shown) < options, output, signals (what
# every command shares) < commands (one module per family) < app (assembles)
CLI_ROOMS = {"views": 0, "completion": 0, "options": 1, "output": 1, "signals": 1, "commands": 2, "app": 3}


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dnncli"):
            out += [node.module] if node.module != "dnncli.cli" else [f"dnncli.cli.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("dnncli")]
    return out


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["dnncli", "cli"] and len(parts) > 2 else None


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_cli_commands_and_views_import_only_downward():
    wrong = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        room = _room(module)
        if room not in CLI_ROOMS:
            continue
        for target in _imports(path):
            other = _room(target)
            if other is None:
                continue  # below cli/, judged by the floors
            same_views = room == other == "views"
            if not same_views and CLI_ROOMS.get(other, 99) >= CLI_ROOMS[room]:
                wrong.append((module, target))
    assert not wrong, wrong
