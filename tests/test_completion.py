"""Shell completion (issue 26), through Click's completion protocol as the shells drive it: a fresh ``dnn`` process
with ``_DNN_COMPLETE`` and the words of the line in ``COMP_WORDS``/``COMP_CWORD`` (bash, which splits a word at
``=``) or ``_TYPER_COMPLETE_ARGS`` (zsh, fish). ``--set`` keys of the config named on the line (a layer's keys by
its type) and the names each takes, run directories, flags, datasets; nothing, and no traceback, where it cannot
know."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "notes_bn_dropout.yaml"  # dense, batch_normalization, dropout, dense, ...
DNN = [sys.executable, "-c", "import sys; sys.argv[0] = 'dnn'; from dnncli.cli import main; main()"]


def complete(words: list[str], shell: str = "bash", cwd=None) -> tuple[list[str], subprocess.CompletedProcess]:
    """What ``dnn`` answers for the line ``dnn WORDS`` with the cursor at the end of the last word."""
    env = {**os.environ, "_DNN_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        # bash breaks words at '=': "key=val" reaches the completion as three words, "key", "=", "val"
        split = []
        for word in words:
            head, eq, tail = word.partition("=")
            split += [head, "=", tail] if eq and not word.startswith("-") else [word]
        line = ["dnn", *split]
        env |= {"COMP_WORDS": " ".join(shlex.quote(w) if w else "''" for w in line), "COMP_CWORD": str(len(line) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": " ".join(["dnn", *words]), "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    done = subprocess.run(DNN, env=env, capture_output=True, text=True, cwd=cwd, timeout=30)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stdout.splitlines() if line], done


def test_set_completes_the_layers_of_the_config_on_the_line():
    layers = yaml.safe_load(CONFIG.read_text())["model"]["layers"]
    got, _ = complete(["train", str(CONFIG), "--set", "model.layers."])
    assert got == [f"model.layers.{i}" for i in range(len(layers))] + ["model.layers.*"]


def test_set_completes_a_layers_keys_by_its_type():
    got, _ = complete(["validate", str(CONFIG), "--set", "model.layers.1."])  # batch_normalization
    assert "model.layers.1.momentum" in got and "model.layers.1.units" not in got
    got, _ = complete(["validate", str(CONFIG), "--set", "model.layers.3."])  # dense
    assert "model.layers.3.units" in got and "model.layers.3.kernel_initializer" in got
    assert "model.layers.3.momentum" not in got
    got, _ = complete(["validate", str(CONFIG), "--set", "model.layers.1.act"])  # no activation on a batch norm
    assert got == []


def test_set_completes_the_names_a_key_takes_in_bash_and_zsh():
    got, _ = complete(["train", str(CONFIG), "--set", "model.layers.3.activation="])
    assert {"relu", "sigmoid", "swish", "silu"} <= set(got)  # bash replaces what follows the '='
    got, _ = complete(["train", str(CONFIG), "--set", "model.layers.3.activation=si"])
    assert got == ["sigmoid", "silu"]
    got, _ = complete(["train", str(CONFIG), "--set", "model.layers.3.kernel_initializer=he"], shell="zsh")
    zsh = "\n".join(got)  # _arguments '*: :(("key=value" ...))', the whole word each
    assert (
        '"model.layers.3.kernel_initializer=he_normal"' in zsh
        and '"model.layers.3.kernel_initializer=he_uniform"' in zsh
    )
    got, _ = complete(["train", str(CONFIG), "--set", "optimizer="], shell="fish")
    assert {"optimizer=adam", "optimizer=sgd", "optimizer=rmsprop"} <= set(got)
    got, _ = complete(["train", str(CONFIG), "--set", "loss="])
    assert {"binary_crossentropy", "mse"} <= set(got)


def test_a_unique_key_opens_so_the_shell_completes_as_far_as_it_is_certain():
    got, _ = complete(["train", str(CONFIG), "--set", "model.layers.0.act"])
    assert got and all(g.startswith("model.layers.0.activation=") for g in got)  # bash strips up to '=' once typed
    got, _ = complete(["train", str(CONFIG), "--set", "training.callbacks.early_stopping.pat"])
    assert got == ["training.callbacks.early_stopping.patience="]


@pytest.mark.parametrize(
    "words",
    [
        ["train", "no/such/config.yaml", "--set", "model."],
        ["train", "--set", "model."],  # no config on the line yet
        ["train", str(ROOT / "README.md"), "--set", "model."],  # not a config
        ["train", str(CONFIG), "--set", "model.layers.99."],  # no such layer
        ["train", str(CONFIG), "--set", "nothing.here="],
    ],
)
def test_nothing_to_complete_is_nothing_and_no_traceback(words, tmp_path):
    (tmp_path / "broken.yaml").write_text("model: [unclosed\n")
    got, done = complete(words)
    assert got == [] and done.stderr == ""
    got, done = complete(["train", str(tmp_path / "broken.yaml"), "--set", "model."])
    assert got == [] and done.stderr == ""


def test_run_dir_arguments_complete_run_directories(tmp_path):
    run = tmp_path / "runs" / "spirals-20260101-120000"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: spirals\n")
    (run / "model.npz").write_bytes(b"")
    (tmp_path / "runs" / "notes").mkdir()  # a folder that holds no run
    (tmp_path / "runs" / "notes" / "config.yaml").write_text("x: 1\n")
    expected = ["runs/spirals-20260101-120000"]
    assert complete(["eval", ""], cwd=tmp_path)[0] == expected
    assert complete(["eval", "runs/sp"], cwd=tmp_path)[0] == expected
    assert complete(["train", "--resume", "ru"], cwd=tmp_path)[0] == expected
    assert complete(["export", "runs/"], cwd=tmp_path)[0] == expected
    sweep = tmp_path / "runs" / "sweeps" / "grid"
    (sweep / "trials").mkdir(parents=True)
    (sweep / "sweep.yaml").write_text("config: x.yaml\n")
    assert set(complete(["compare", "runs/"], cwd=tmp_path)[0]) == {*expected, "runs/sweeps/grid"}


def test_fail_on_completes_flag_names_in_a_comma_list():
    got, _ = complete(["inspect-gradients", str(CONFIG), "--fail-on", "van"])
    assert got == ["vanishing"]
    got, _ = complete(["train", str(CONFIG), "--fail-on-any", "vanishing,ex"])
    assert got == ["vanishing,exploding"]
    got, _ = complete(["train", str(CONFIG), "--fail-on", ""])
    assert "any" in got and "nonfinite" in got


def test_data_fetch_completes_the_datasets():
    assert complete(["data", "fetch", ""])[0] == ["mnist", "fashion-mnist"]
    assert complete(["data", "fetch", "fa"])[0] == ["fashion-mnist"]


def test_completion_answers_fast_without_numpy():
    best = min(_timed(["train", str(CONFIG), "--set", "model.layers.3.activation="]) for _ in range(3))
    assert best < 1.0, best  # about 0.1 s on the project's machines (README); generous for a loaded CI runner
    code = (
        "import sys, atexit; sys.argv[0] = 'dnn';"
        "atexit.register(lambda: sys.stderr.write('numpy' if 'numpy' in sys.modules else 'none'));"
        "from dnncli.cli import main; main()"
    )
    env = {**os.environ, "_DNN_COMPLETE": "complete_bash", "COMP_CWORD": "4"}
    env["COMP_WORDS"] = f"dnn train {CONFIG} --set model.layers."
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert done.stderr == "none" and "model.layers.0" in done.stdout


def _timed(words) -> float:
    start = time.perf_counter()
    complete(words)
    return time.perf_counter() - start


def test_typer_completion_is_on():
    helped = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in helped.output and "--show-completion" in helped.output
    env = {**os.environ, "_DNN_COMPLETE": "source_bash"}
    script = subprocess.run(DNN, env=env, capture_output=True, text=True, timeout=30).stdout
    assert "complete -o default -F _dnn_completion dnn" in script
