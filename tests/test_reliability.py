"""Hostile input and the faults of real machines: YAML bombs, a full disk, SIGTERM, racing runs, damaged state."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli import app
from dnncli.errors import DnnError
from dnncli.experiment.config import load
from dnncli.experiment.run import TrainingRun

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "name": "small",
    "seed": 1,
    "data": {"source": "synthetic", "generator": "moons", "n_samples": 400},
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "batch_normalization"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "training": {"epochs": 6, "batch_size": 8, "validation_split": 0.2},
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def same_weights(a: Path, b: Path) -> None:
    with np.load(a / "model.npz") as x, np.load(b / "model.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for k in x.files:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


# config loading with limits ------------------------------------------------------------------------------------
def _bombs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    laughs.append("model: *a8")
    files = {
        "laughs": ("\n".join(laughs) + "\n", "expands to more than 100,000 values"),
        "deep": ("model: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper than 100 levels"),
        "big": ("name: big\n" + "# padding\n" * 500_000, "a config may be 4 MiB at most"),
    }
    out = {}
    for name, (text, message) in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
        out[name] = (tmp_path / f"{name}.yaml", message)
    (tmp_path / "latin1.yaml").write_bytes("name: caf\u00e9\nloss: mse\n".encode("latin-1"))
    out["latin1"] = (tmp_path / "latin1.yaml", "not UTF-8 text: byte 9 (0xe9)")
    return out


LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB of address space
from dnncli.cli import main
sys.argv = ["dnn", "train", sys.argv[1], "--out", sys.argv[2]]
main()
"""


@pytest.mark.parametrize("name", ["laughs", "deep", "big", "latin1"])
def test_hostile_configs_are_refused_quickly_in_little_memory(tmp_path, name):
    path, message = _bombs(tmp_path)[name]
    start = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", LIMITED, str(path), str(tmp_path / "run")], capture_output=True, text=True, timeout=30
    )
    assert time.perf_counter() - start < 5
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: {path}")
    assert not (tmp_path / "run").exists()


def test_anchors_shared_as_users_write_them_still_load():
    cfg = load(ROOT / "configs" / "vanishing_sigmoid.yaml")  # ten layers share one initializer through &id001
    assert cfg["model"]["layers"][9]["kernel_initializer"]["stddev"] == 0.05


def test_an_alias_bomb_in_a_set_value_is_refused(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    r = run("validate", ROOT / "configs" / "quickstart.yaml", "--set", "name={" + ", ".join(levels) + "}")
    assert r.exit_code == 2 and "--set name:1: the document expands to more than 100,000 values" in r.output


# a full disk, an unwritable directory --------------------------------------------------------------------------
def test_a_full_disk_mid_run_is_one_line_and_resume_continues_exactly(tmp_path, monkeypatch):
    from dnncli import files

    path = write(tmp_path / "c.yaml", SMALL)
    assert run("train", path, "--out", tmp_path / "straight", "--quiet").exit_code == 0
    writes = {"n": 0}
    real_fsync = os.fsync

    def full(fd):
        writes["n"] += 1
        if writes["n"] > 12:  # the disk fills during the third epoch
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", full)
    r = run("train", path, "--out", tmp_path / "cut", "--quiet")
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "no space left on the device for" in r.output and "free" in r.output and "needed" in r.output
    assert f"dnn train --resume {tmp_path / 'cut'}" in r.output
    assert not [p for p in (tmp_path / "cut").iterdir() if p.name.endswith(".tmp")]  # no half-written file
    r = run("train", "--resume", tmp_path / "cut", "--quiet")
    assert r.exit_code == 0, r.output
    same_weights(tmp_path / "straight", tmp_path / "cut")


def test_a_directory_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    from dnncli import files

    def denied(fd):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(files.os, "fsync", denied)
    r = run("train", write(tmp_path / "c.yaml", SMALL), "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 2 and "cannot write config.yaml (Permission denied)" in r.output
    assert "Traceback" not in r.output


def test_a_real_full_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("no tmpfs here")
    try:
        spec = SMALL | {
            "model": SMALL["model"]
            | {
                "layers": [{"type": "dense", "units": 256, "activation": "relu"}] * 2
                + [{"type": "dense", "units": 2, "activation": "softmax"}]
            }
        }
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "dnncli",
                "train",
                str(write(tmp_path / "c.yaml", spec)),
                "--out",
                str(disk / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "no space left on the device" in r.stderr and "Traceback" not in r.stderr
        assert r.stderr.count("\n") == 1
        if (disk / "run" / "checkpoint.npz").exists():  # what was written before stays readable
            with np.load(disk / "run" / "checkpoint.npz") as ck:
                assert "meta" in ck.files
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# SIGTERM ---------------------------------------------------------------------------------------------------------
def test_sigterm_stops_at_a_batch_with_a_checkpoint_and_resume_is_bit_identical(tmp_path):
    spec = SMALL | {"training": SMALL["training"] | {"epochs": 8, "batch_size": 2}}
    path = write(tmp_path / "c.yaml", spec)
    assert run("train", path, "--out", tmp_path / "straight", "--quiet").exit_code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnncli", "train", str(path), "--out", str(tmp_path / "cut")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.strip().startswith("2 "):  # the second epoch's line: stop during the third
            time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            break
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (rest, err)
    assert "Resume with: dnn train --resume" in rest and "Traceback" not in err
    assert not (tmp_path / "cut" / "model.npz").exists()
    r = subprocess.run([sys.executable, "-m", "dnncli", "train", "--resume", str(tmp_path / "cut"), "--quiet"])
    assert r.returncode == 0
    same_weights(tmp_path / "straight", tmp_path / "cut")


# one directory, one run ----------------------------------------------------------------------------------------------
RACER = """
import os, sys, time
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.001)
from dnncli.cli import main
sys.argv = ["dnn", "train", sys.argv[2], "--out", sys.argv[3], "--quiet"]
main()
"""


def test_two_runs_racing_for_one_directory_get_one_run(tmp_path):
    path = write(tmp_path / "c.yaml", SMALL | {"training": SMALL["training"] | {"epochs": 3}})
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(go), str(path), str(tmp_path / "run")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1.0)  # both have imported and wait at the barrier
    go.touch()
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 2], results
    loser = next(err for _, err, code in results if code == 2)
    assert "in use by " in loser or "holds a run already" in loser  # its holder named once it has written it
    assert (tmp_path / "run" / "model.npz").exists()


def test_resume_while_the_run_is_training_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    path = write(tmp_path / "c.yaml", SMALL)
    first = TrainingRun.create(load(path), out=tmp_path / "run")  # holds the directory until it has trained
    with pytest.raises(DnnError, match=rf"--resume {tmp_path / 'run'}: in use by process {os.getpid()}"):
        TrainingRun.open(tmp_path / "run")
    r = run("train", path, "--out", tmp_path / "run")
    assert r.exit_code == 2 and "in use by process" in r.output
    first.lock.release()  # as a crash would: the file stays, naming its holder, but nothing holds it
    assert (tmp_path / "run" / ".lock").read_text().startswith(f"process {os.getpid()}")
    resumed = TrainingRun.open(tmp_path / "run")
    assert resumed.train().status == "completed"


def test_runs_started_within_one_second_get_distinct_directories(tmp_path):
    path = write(tmp_path / "c.yaml", SMALL | {"training": SMALL["training"] | {"epochs": 1}})
    dirs = [TrainingRun.create(load(path), runs_root=tmp_path / "runs").run_dir for _ in range(3)]
    assert len(set(dirs)) == 3 and all(d.parent == tmp_path / "runs" for d in dirs)


# damaged state ----------------------------------------------------------------------------------------------------------
def test_a_truncated_checkpoint_is_named(tmp_path):
    out = tmp_path / "run"
    assert run("train", write(tmp_path / "c.yaml", SMALL), "--out", out, "--epochs", "2", "--quiet").exit_code == 0
    data = (out / "checkpoint.npz").read_bytes()
    (out / "checkpoint.npz").write_bytes(data[: len(data) // 2])
    r = run("train", "--resume", out, "--epochs", "4")
    assert r.exit_code == 2 and f"{out / 'checkpoint.npz'}: not a readable checkpoint" in r.output


def test_a_config_edited_after_the_start_is_refused_unless_forced(tmp_path):
    out = tmp_path / "run"
    assert run("train", write(tmp_path / "c.yaml", SMALL), "--out", out, "--epochs", "2", "--quiet").exit_code == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["optimizer"]["learning_rate"] = 0.5
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    r = run("train", "--resume", out, "--epochs", "3")
    assert r.exit_code == 2 and "config.yaml was edited after the run started" in r.output
    assert "optimizer.learning_rate: 0.001 -> 0.5" in r.output and "--force" in r.output
    r = run("train", "--resume", out, "--epochs", "3", "--force", "--quiet")
    assert r.exit_code == 0, r.output
    # --epochs is the way to train longer: the run keeps its own config up to date
    r = run("train", "--resume", out, "--epochs", "4", "--quiet")
    assert r.exit_code == 0, r.output


def test_a_run_killed_in_its_first_epoch_resumes_from_its_epoch_zero_checkpoint(tmp_path):
    # a kill -9 before the first epoch ended left only the checkpoint written at the start
    path = write(tmp_path / "c.yaml", SMALL)
    assert run("train", path, "--out", tmp_path / "straight", "--quiet").exit_code == 0
    first = TrainingRun.create(load(path), out=tmp_path / "run")
    first.lock.release()  # the process died: the system released its lock
    r = run("train", "--resume", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    same_weights(tmp_path / "straight", tmp_path / "run")
