"""README's promises: the two commands, and a config reference that names every key and default."""

from pathlib import Path

import pytest

from dnncli.data import sources
from dnncli.experiment.config import TrainingSettings
from dnncli.nn import activations, initializers, layers, losses, optimizers, regularizers, schedules
from dnncli.registry import section_parameters
from dnncli.train import callbacks

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
CI = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
REGISTRIES = [activations, callbacks, sources, initializers, layers, losses, optimizers, regularizers, schedules]


def test_two_commands():
    assert "pip install . && dnn train configs/quickstart.yaml" in README
    marker = README.index("<!-- test-command -->")
    command = README[marker:].splitlines()[2].strip()
    assert command.startswith("python -m pip install") and "pytest" in command
    assert "test-command" in CI


@pytest.mark.parametrize("module", REGISTRIES, ids=lambda m: m.__name__)
def test_reference_documents_every_name_argument_and_default(module):
    reg = module.REGISTRY
    for name in reg.entries:
        assert f"| `{name}` |" in README, name
        for arg, p in reg.parameters(name).items():
            default = "required" if p.default is p.empty else p.default
            if default is None:
                default = "null"
            elif isinstance(default, bool):
                default = str(default).lower()
            assert f"`{arg}` ({default})" in README, (name, arg)


def test_reference_documents_training_keys():
    for key in section_parameters(TrainingSettings):
        assert f"| `{key}` |" in README, key


def test_reference_documents_monitor_keys():
    from dnncli.diagnostics.monitor import MonitorSettings

    for name, p in section_parameters(MonitorSettings).items():
        default = "null" if p.default is None else repr(p.default)
        assert f"| `{name}` | {default} |" in README, name


def test_python_api_example_runs(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    code = README.split("## The Python API")[1].split("```python")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)  # its run directory goes here
    code = code.replace('"configs/quickstart.yaml"', repr(str(root / "configs" / "quickstart.yaml")))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["result"].status == "completed" and (tmp_path / "runs" / "notebook" / "model.npz").exists()
    assert scope["probabilities"].shape == (32, 2)
