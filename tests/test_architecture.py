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
