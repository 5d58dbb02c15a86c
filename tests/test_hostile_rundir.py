"""Run directories and their files against a red team: the user's own files, paths that cannot be made, runs cut
short at their start, damaged and re-saved run files. Each is exit 2 and one line naming the file or directory at
fault and what to do (no traceback), and nothing the user had is overwritten."""

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli import files
from dnncli.cli import app
from dnncli.errors import DnnError
from dnncli.experiment import rundir, runfiles
from dnncli.experiment.runfiles import LOCK_TEXT, RUN_FILES, START_FILES, dir_state

SPEC = {
    "name": "hostile",
    "seed": 2,
    "data": {"source": "synthetic", "generator": "moons", "n_samples": 200},
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "training": {"epochs": 2, "batch_size": 16, "validation_split": 0.2},
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(r, *needles) -> str:
    """Exit 2, one ``error:`` line holding each of ``needles``, no traceback; the line."""
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.output
    for needle in needles:
        assert str(needle) in errors[0], errors[0]
    return errors[0]


def config(tmp_path: Path, **training) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(SPEC | {"training": SPEC["training"] | training}))
    return path


def tree(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every entry under ``root`` (links not followed), its kind, mode and content's hash; ``skip``: a subtree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip.parent and skip.name in dirnames:
            dirnames.remove(skip.name)
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
            if stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            out[str(p.relative_to(root))] = f"{kind:o} {stat.S_IMODE(st.st_mode):o} {digest}"
    return out


def same_weights(a: Path, b: Path) -> None:
    with np.load(a / "model.npz") as x, np.load(b / "model.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for k in x.files:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished two-epoch run, trained once; tests copy it."""
    base = tmp_path_factory.mktemp("finished")
    r = run("train", config(base), "--out", base / "run", "--quiet")
    assert r.exit_code == 0, r.output
    return base / "run"


def copy(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to, symlinks=True)
    return to


# 1. --out: a directory of the user's ---------------------------------------------------------------------------
@pytest.mark.parametrize("own", ["losses.csv", "best.npz", "tensorboard/", "notes.txt", ".lock"])
def test_a_directory_of_the_users_own_files_is_refused_and_left_as_it_was(tmp_path, own):
    path = config(tmp_path)
    user = tmp_path / "mine"
    user.mkdir()
    if own.endswith("/"):
        (user / own).mkdir()
        (user / own / "events").write_text("the user's own\n")
    else:
        (user / own).write_text("the user's own\n")
    before = tree(tmp_path)
    line = refused(run("train", path, "--out", user, "--quiet"), f"--out {user}", own.rstrip("/"), "--force")
    assert "not empty, and not a run directory" in line
    assert tree(tmp_path) == before  # not even a .lock


def test_force_trains_beside_other_files_but_never_over_a_file_of_a_runs_names(tmp_path, finished):
    path = config(tmp_path)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me\n")
    (user / "data.csv").write_text("1,2\n")
    before = tree(user)
    r = run("train", path, "--out", user, "--force", "--quiet")
    assert r.exit_code == 0, r.output
    after = tree(user)
    assert {k: after[k] for k in before} == before  # the user's files as they were
    assert set(after) - set(before) <= set(RUN_FILES)
    same_weights(finished, user)
    # a file of a run's own names is never replaced, --force or not; nor is a run
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "losses.csv").write_text("the user's own\n")
    (clash / "notes.txt").write_text("keep me\n")
    before = tree(tmp_path, skip=user)
    refused(run("train", path, "--out", clash, "--force", "--quiet"), f"--out {clash}", "losses.csv", "never replaces")
    assert tree(tmp_path, skip=user) == before
    refused(run("train", path, "--out", user, "--force", "--quiet"), "holds a run already", f"--resume {user}")
    assert tree(user) == after


def test_a_run_refused_as_out_keeps_its_lock_file_as_it_was(tmp_path, finished):
    # the lock is taken to learn whether a run trains there, and written only once the directory is taken
    done = copy(finished, tmp_path / "done")
    (done / ".lock").write_text(f"{LOCK_TEXT}1 on elsewhere (since 2026-01-01 00:00:00)\n")
    before = tree(done)
    for extra in ([], ["--force"]):
        refused(run("train", config(tmp_path), "--out", done, "--quiet", *extra), "holds a run already")
        assert tree(done) == before
    # a resume refused after the lock is taken (its config edited) likewise
    text = (done / "config.yaml").read_text()
    (done / "config.yaml").write_text(text.replace("learning_rate: 0.001", "learning_rate: 0.002"))
    assert text != (done / "config.yaml").read_text()
    before = tree(done)
    r = run("train", "--resume", done, "--epochs", "4", "--quiet")
    assert r.exit_code == 2 and "edited" in r.output, r.output
    assert tree(done) == before


def test_a_lock_another_run_has_made_and_not_yet_written_says_in_use(tmp_path):
    # the moment between a racing run's open of .lock and its writing of it: held, empty
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused(run("train", config(tmp_path), "--out", out, "--quiet"), f"--out {out}: in use by another process")
    assert (out / ".lock").read_text() == ""


def test_force_is_explained_and_needs_out_or_resume(tmp_path):
    refused(run("train", config(tmp_path), "--force"), "--force applies with --out DIR")
    help_text = " ".join(run("train", "--help").output.split())
    assert "With --out DIR: write the run into DIR although it holds other files" in help_text


@pytest.mark.parametrize("system", ["/", "/etc"])
def test_system_directories_are_refused_before_anything_is_made(tmp_path, system, monkeypatch):
    if not Path(system).is_dir() or not os.listdir(system):
        pytest.skip(f"no {system} with files here")

    def never(*args, **kwargs):
        raise AssertionError("nothing may be made or locked there")

    monkeypatch.setattr(runfiles, "make_directory", never)  # a safety net: the check must refuse first
    monkeypatch.setattr(rundir.RunLock, "acquire", never)
    refused(run("train", config(tmp_path), "--out", system, "--quiet"), f"--out {system}", "not a run directory")
    assert dir_state(system)[0] == "foreign"


def test_out_through_a_link_to_the_users_directory_is_refused(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "history.csv").write_text("epoch,loss\n1,0.5\n")
    (tmp_path / "link").symlink_to(user)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    path = config(tmp_path)
    before = tree(tmp_path)
    refused(run("train", path, "--out", tmp_path / "link", "--quiet"), "link", "history.csv")
    refused(run("train", path, "--out", tmp_path / "dangling", "--quiet"), "not a directory")
    assert tree(tmp_path) == before


def test_every_file_a_run_writes_is_known_in_one_place(tmp_path):
    pytest.importorskip("tensorboardX")
    callbacks = {"model_checkpoint": {"monitor": "val_loss"}}
    path = config(tmp_path, callbacks=callbacks, tensorboard=True)
    r = run("train", path, "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    diverge = ["--set", "optimizer.name=sgd", "--set", "optimizer.learning_rate=1e30", "--set", "data.scale=none"]
    r = run("train", path, "--out", tmp_path / "nan", "--quiet", *diverge)
    assert r.exit_code == 3, r.output
    written = set(os.listdir(tmp_path / "run")) | set(os.listdir(tmp_path / "nan"))
    assert written == set(RUN_FILES)
    assert set(START_FILES) == {".lock", "config.yaml", "preprocessing.npz", "gradients.csv", "losses.csv"}


# 2. --force onto something that is not a regular file --------------------------------------------------------------
def test_export_force_never_replaces_a_fifo_or_a_directory(tmp_path, finished):
    pytest.importorskip("onnx")
    fifo, folder = tmp_path / "pipe.onnx", tmp_path / "folder.onnx"
    os.mkfifo(fifo)
    folder.mkdir()
    (folder / "inside").write_text("keep me\n")
    (tmp_path / "link.onnx").symlink_to(tmp_path / "target.onnx")
    before = tree(tmp_path)
    for out, kind in ((fifo, "a named pipe (FIFO)"), (folder, "a directory"), (tmp_path / "link.onnx", "link")):
        for force in (["--force"], []):
            refused(run("export", finished, "--out", out, *force), out, kind, "not a regular file")
    assert tree(tmp_path) == before and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert run("export", finished, "--out", tmp_path / "m.onnx").exit_code == 0
    assert run("export", finished, "--out", tmp_path / "m.onnx", "--force").exit_code == 0  # a file is replaced


def test_write_config_force_never_replaces_a_fifo_and_says_so_before_the_work(tmp_path, monkeypatch):
    from dnncli.experiment import cure, inspection  # cure binds inspect_config when imported: before the patch

    assert cure.inspect_config is inspection.inspect_config

    def never(*args, **kwargs):
        raise AssertionError("refused before the probe")

    monkeypatch.setattr(inspection, "inspect_config", never)
    fifo = tmp_path / "fixed.yaml"
    os.mkfifo(fifo)
    path = config(tmp_path)
    refused(run("inspect-gradients", path, "--write-config", fifo, "--force"), fifo, "named pipe", "regular file")
    refused(run("inspect-gradients", path, "--write-config", tmp_path, "--force"), "a directory", "regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_check_replaceable_takes_a_file_or_nothing():
    files.check_replaceable("/no/such/file")
    files.check_replaceable(__file__)
    with pytest.raises(DnnError, match="a character device, not a regular file"):
        files.check_replaceable("/dev/null", "--out")  # only looked at, never written


# 3. a run directory that cannot be made -------------------------------------------------------------------------
def test_out_under_a_regular_file_in_proc_or_too_long_is_one_line(tmp_path):
    path = config(tmp_path)
    (tmp_path / "somefile").write_text("mine\n")
    before = tree(tmp_path)
    refused(run("train", path, "--out", tmp_path / "somefile" / "run"), "somefile is a file, not a directory")
    refused(run("train", path, "--out", tmp_path / ("a" * 300)), "too long", "255 bytes")
    refused(run("train", path, "--out", tmp_path / "somefile"), "exists and is not a directory")
    assert tree(tmp_path) == before
    if Path("/proc/self").is_dir():
        refused(run("train", path, "--out", "/proc/x"), "--out /proc/x", "cannot create a directory in /proc")


def test_a_read_only_directory_is_one_line_and_nothing_is_left(tmp_path, monkeypatch):
    path = config(tmp_path)
    locked = tmp_path / "readonly"
    locked.mkdir()
    real = Path.mkdir

    def denied(self, *args, **kwargs):
        if locked in Path(self).parents:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    refused(run("train", path, "--out", locked / "run"), locked / "run", f"cannot create a directory in {locked}")
    from dnncli.experiment.config import load
    from dnncli.experiment.run import TrainingRun

    with pytest.raises(DnnError, match=f"cannot create a directory in {locked}"):
        TrainingRun.create(load(path), runs_root=locked / "runs")
    monkeypatch.undo()
    assert not list(locked.iterdir())
    if os.geteuid() != 0:  # root writes anyway
        locked.chmod(0o555)
        try:
            refused(run("train", path, "--out", locked / "run"), "Permission denied")
        finally:
            locked.chmod(0o755)


class _FullFile:
    """An open file whose writes find the disk full."""

    def __init__(self, f):
        self.f = f

    def __getattr__(self, name):
        return getattr(self.f, name)

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_disk_full_when_the_lock_is_written_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    path = config(tmp_path)
    monkeypatch.setattr(rundir, "open", lambda p, mode: _FullFile(open(p, mode)), raising=False)  # noqa: SIM115
    refused(run("train", path, "--out", tmp_path / "new" / "run"), "no space left on the device for .lock")
    assert not (tmp_path / "new").exists()  # the directories made for it are gone
    (tmp_path / "empty").mkdir()
    refused(run("train", path, "--out", tmp_path / "empty"), tmp_path / "empty", ".lock")
    assert not list((tmp_path / "empty").iterdir())  # no lock that names nobody
    monkeypatch.undo()
    assert run("train", path, "--out", tmp_path / "empty", "--quiet").exit_code == 0


def test_a_file_where_the_tensorboard_folder_goes_is_named(tmp_path):
    pytest.importorskip("tensorboardX")
    path = config(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "tensorboard").write_text("mine\n")
    refused(run("train", path, "--out", out, "--tensorboard", "--quiet"), "tensorboard", "--force")
    refused(run("train", path, "--out", out, "--tensorboard", "--force", "--quiet"), "tensorboard", "never replaces")
    assert (out / "tensorboard").read_text() == "mine\n"
    r = run("train", path, "--out", tmp_path / "tb", "--tensorboard", "--quiet")
    assert r.exit_code == 0, r.output
    shutil.rmtree(tmp_path / "tb" / "tensorboard")
    (tmp_path / "tb" / "tensorboard").write_text("mine\n")
    refused(run("train", "--resume", tmp_path / "tb", "--epochs", 3), tmp_path / "tb" / "tensorboard", "not a folder")
    (tmp_path / "tb" / "tensorboard").unlink()
    (tmp_path / "tb" / "tensorboard").mkdir()
    (tmp_path / "tb" / "tensorboard" / "steps").write_text("mine\n")
    refused(run("train", "--resume", tmp_path / "tb", "--epochs", 3, "--quiet"), "tensorboard/steps", "cannot write")


# 4. runs cut short at their start --------------------------------------------------------------------------------
def test_a_disk_full_after_config_yaml_leaves_a_directory_that_restarts_in_place(tmp_path, finished, monkeypatch):
    path = config(tmp_path)
    out = tmp_path / "run"
    writes = {"n": 0}
    real_fsync = os.fsync

    def full_after_config(fd):
        writes["n"] += 1
        if writes["n"] > 1:  # config.yaml is written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", full_after_config)
    refused(run("train", path, "--out", out), "no space left on the device for preprocessing.npz")
    monkeypatch.undo()
    assert sorted(os.listdir(out)) == [".lock", "config.yaml"] and dir_state(out)[0] == "unfinished"
    line = refused(run("train", "--resume", out), "stopped before its first checkpoint")
    assert line.endswith(f"dnn train {out / 'config.yaml'} --out {out}")
    r = run("train", out / "config.yaml", "--out", out, "--quiet")  # as the line says
    assert r.exit_code == 0, r.output
    same_weights(finished, out)


KILLED_WHILE_CHECKPOINTING = """
import os, signal, sys
real = os.replace
def replace(src, dst):
    if str(dst).endswith("checkpoint.npz"):  # a large model's first checkpoint: written, not yet renamed
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
from dnncli.cli import main
sys.argv = ["dnn", "train", sys.argv[1], "--out", sys.argv[2], "--quiet"]
main()
"""


def test_a_run_killed_while_writing_its_first_checkpoint_restarts_in_place(tmp_path, finished):
    path = config(tmp_path)
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-c", KILLED_WHILE_CHECKPOINTING, str(path), str(out)], timeout=120)
    assert p.returncode == -signal.SIGKILL
    left = sorted(os.listdir(out))
    assert "checkpoint.npz" not in left and any(runfiles.is_leftover(n) for n in left)
    assert dir_state(out)[0] == "unfinished"
    refused(run("train", "--resume", out), f"--resume {out}", "no checkpoint.npz", f"--out {out}")
    r = run("train", path, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]  # the killed write's leftover is gone
    same_weights(finished, out)


def test_leftovers_are_cleaned_at_resume_and_only_ours(tmp_path, finished):
    out = copy(finished, tmp_path / "run")
    (out / ".checkpoint.npz.abcd1234.tmp").write_bytes(b"half a checkpoint")
    (out / ".history.csv.zz_9abcd.tmp").write_text("epoch\n")
    (out / ".notes.txt.abcd1234.tmp").write_text("the user's own\n")
    r = run("train", "--resume", out, "--epochs", 3, "--quiet")
    assert r.exit_code == 0, r.output
    assert sorted(n for n in os.listdir(out) if n.endswith(".tmp")) == [".notes.txt.abcd1234.tmp"]


def test_a_run_that_lost_its_checkpoint_says_exactly_what_to_delete(tmp_path, finished):
    path = config(tmp_path)
    out = copy(finished, tmp_path / "lost")
    (out / "checkpoint.npz").unlink()
    (out / "model.npz").unlink()
    line = refused(run("train", path, "--out", out), "no checkpoint.npz to resume from", "delete them first")
    command = line.split("delete them first: ")[1].split("; or choose")[0]
    refused(run("train", "--resume", out), "no checkpoint.npz to resume from", "--out NEW_DIR")
    assert subprocess.run(command, shell=True).returncode == 0
    assert sorted(os.listdir(out)) == [".lock"]
    assert run("train", path, "--out", out, "--quiet").exit_code == 0


def test_resume_of_a_file_a_finished_run_or_an_empty_directory_says_what_to_do(tmp_path, finished):
    (tmp_path / "file").write_text("x\n")
    refused(run("train", "--resume", tmp_path / "file"), "a file, not a run directory")
    (tmp_path / "empty").mkdir()
    refused(run("train", "--resume", tmp_path / "empty"), "not a run directory")
    done = copy(finished, tmp_path / "done")
    (done / "checkpoint.npz").unlink()
    refused(run("train", "--resume", done), "a finished run", f"--init-weights {done}")


# 5. damaged run files -------------------------------------------------------------------------------------------
def _damage_checkpoint(run_dir: Path, how: str) -> None:
    with np.load(run_dir / "checkpoint.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    if how == "list":
        meta = [meta["epoch"], meta["step"]]
    elif how == "no history":
        del meta["history"]
    elif how == "text epoch":
        meta["epoch"] = "two"
    elif how == "garbage shuffle state":
        meta["shuffle_rng"] = {"bit_generator": "PCG64", "state": "garbage"}
    elif how == "garbage dropout state":
        meta["generators"] = {
            k: {"bit_generator": "PCG64", "state": {"state": "x", "inc": 1}} for k in meta["generators"]
        }
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run_dir / "checkpoint.npz", **arrays)


@pytest.mark.parametrize("how", ["list", "no history", "text epoch", "garbage shuffle state", "garbage dropout state"])
def test_a_damaged_checkpoint_is_one_line_naming_it(tmp_path, finished, how):
    out = copy(finished, tmp_path / "run")
    _damage_checkpoint(out, how)
    refused(run("train", "--resume", out, "--epochs", 3), f"{out / 'checkpoint.npz'}: not a readable checkpoint")
    r = run("inspect-gradients", out, "--plain")  # the gradients are in gradients.csv: read without the checkpoint
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    (out / "model.npz").unlink()
    refused(run("eval", out), f"{out}: no model.npz")


def test_a_checkpoint_of_another_architecture_is_named(tmp_path, finished):
    out = copy(finished, tmp_path / "run")
    narrow = [{"type": "dense", "units": 5, "activation": "relu"}, *SPEC["model"]["layers"][1:]]
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(SPEC | {"model": SPEC["model"] | {"layers": narrow}}))
    assert run("train", tmp_path / "w.yaml", "--out", tmp_path / "narrow", "--quiet").exit_code == 0
    shutil.copy(tmp_path / "narrow" / "checkpoint.npz", out / "checkpoint.npz")
    refused(run("train", "--resume", out, "--epochs", 3), "config.yaml was edited")
    refused(
        run("train", "--resume", out, "--epochs", 3, "--force"),
        f"{out / 'checkpoint.npz'} does not match {out / 'config.yaml'}",
        "kernel (2, 5) in the file, (2, 8) in the config",
    )


def test_a_run_whose_config_yaml_was_deleted_is_named(tmp_path, finished):
    out = copy(finished, tmp_path / "run")
    (out / "config.yaml").unlink()
    for args in (["train", "--resume", out, "--epochs", 3], ["eval", out], ["inspect-gradients", out]):
        refused(run(*args), "config.yaml")


@pytest.mark.parametrize("empty", ["no bytes", "no arrays"])
def test_an_empty_preprocessing_file_is_named_on_resume(tmp_path, finished, empty):
    out = copy(finished, tmp_path / "run")
    if empty == "no bytes":
        (out / "preprocessing.npz").write_bytes(b"")
    else:
        np.savez(out / "preprocessing.npz")
    refused(run("train", "--resume", out, "--epochs", 3), f"{out / 'preprocessing.npz'}: not a readable preprocessing")


def test_a_preprocessing_file_of_no_bytes_is_named_by_eval_and_predict(tmp_path, finished):
    out = copy(finished, tmp_path / "run")
    (out / "preprocessing.npz").write_bytes(b"")
    (tmp_path / "x.csv").write_text("0.5,0.5\n")
    refused(run("eval", out), "preprocessing.npz")
    refused(run("predict", out, tmp_path / "x.csv"), "preprocessing.npz")


def test_a_preprocessing_archive_without_arrays_is_named_by_eval_and_predict(tmp_path, finished):
    out = copy(finished, tmp_path / "run")
    np.savez(out / "preprocessing.npz")
    (tmp_path / "x.csv").write_text("0.5,0.5\n")
    refused(run("eval", out), "preprocessing.npz")
    refused(run("predict", out, tmp_path / "x.csv"), "preprocessing.npz")


@pytest.mark.parametrize("kind", ["unicode", "object"])
def test_a_model_npz_of_strings_is_named(tmp_path, finished, kind):
    out = copy(finished, tmp_path / "run")
    with np.load(out / "model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    text = np.full(arrays["layer0.kernel"].shape, "w")
    arrays["layer0.kernel"] = text if kind == "unicode" else text.astype(object)
    np.savez(out / "model.npz", **arrays)
    (tmp_path / "x.csv").write_text("0.5,0.5\n")
    commands = [["eval", out], ["predict", out, tmp_path / "x.csv"]]
    commands.append(["train", config(tmp_path), "--init-weights", out / "model.npz", "--out", tmp_path / "warm"])
    try:
        import onnx  # noqa: F401

        commands.append(["export", out, "--out", tmp_path / "m.onnx"])
    except ImportError:
        pass
    for args in commands:
        refused(run(*args), f"{out / 'model.npz'}")


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", bytes(range(256))])
def test_an_empty_or_binary_history_csv_is_named_by_compare_and_plot(tmp_path, finished, content):
    out = copy(finished, tmp_path / "run")
    (out / "history.csv").write_bytes(content)
    refused(run("compare", out, finished), f"{out / 'history.csv'}")
    pytest.importorskip("matplotlib")
    refused(run("plot", out), f"{out / 'history.csv'}")


def test_a_bad_number_in_gradients_csv_is_named_with_its_line(tmp_path, finished):
    out = copy(finished, tmp_path / "run")
    lines = (out / "gradients.csv").read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    row = lines[2].rstrip("\n").split(",")
    row[header.index("grad_norm")] = "abc"
    lines[2] = ",".join(row) + "\n"
    (out / "gradients.csv").write_text("".join(lines))
    where = f"{out / 'gradients.csv'}, line 3: grad_norm is 'abc', not a number"
    refused(run("inspect-gradients", out), where)
    refused(run("train", "--resume", out, "--epochs", 3), where)
    pytest.importorskip("matplotlib")
    refused(run("plot", out), where)


def _as_a_spreadsheet_saves_it(path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))


def test_logs_resaved_by_a_spreadsheet_are_read_as_written(tmp_path, finished):
    path = config(tmp_path, epochs=3)
    assert run("train", path, "--out", tmp_path / "straight", "--quiet").exit_code == 0
    out = copy(finished, tmp_path / "run")
    for name in ("history.csv", "gradients.csv", "losses.csv"):
        _as_a_spreadsheet_saves_it(out / name)
    r = run("inspect-gradients", out, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["layers"] == json.loads(run("inspect-gradients", finished, "--json").output)["layers"]
    r = run("compare", out, finished, "--json")
    assert r.exit_code == 0, r.output
    first, second = json.loads(r.output)["runs"]
    assert {k: v for k, v in first.items() if k != "run_dir"} == {k: v for k, v in second.items() if k != "run_dir"}
    if _has_matplotlib():
        assert run("plot", out).exit_code == 0
        assert run("compare", out, finished, "--x", "samples", "--plot", tmp_path / "c.png").exit_code == 0
    r = run("train", "--resume", out, "--epochs", 3, "--quiet")
    assert r.exit_code == 0, r.output
    same_weights(tmp_path / "straight", out)
    assert (out / "gradients.csv").read_bytes() == (tmp_path / "straight" / "gradients.csv").read_bytes()


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_fifo_where_a_run_file_goes_is_named_not_waited_on(tmp_path, finished):
    out = copy(finished, tmp_path / "run")
    (out / "history.csv").unlink()
    os.mkfifo(out / "history.csv")
    (out / "checkpoint.npz").unlink()
    os.mkfifo(out / "checkpoint.npz")
    for args in (["compare", out], ["train", "--resume", out, "--epochs", "3"]):
        p = subprocess.run(
            [sys.executable, "-m", "dnncli", *map(str, args)], capture_output=True, text=True, timeout=60
        )  # a reader that opened the FIFO would wait forever: the timeout says so
        assert p.returncode == 2 and "a named pipe (FIFO), not a regular file" in p.stderr, p.stderr
        assert p.stderr.count("\n") == 1
