"""What a Keras user reaches for: warm starts from any run file, predict on the training layout, eval in the data's
units, a way out of NaN, --version and -h, installable hints, and output that reads right."""

import csv
import io
import json
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import dnncli
from dnncli.cli.app import app
from tests.test_cli import DIVERGE, run, write  # the loss overflows within the first epoch (exit 3)

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "name": "tiny",
    "seed": 1,
    "data": {"source": "synthetic", "generator": "spirals", "n_samples": 200, "noise": 0.05, "scale": "standardize"},
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 2, "batch_size": 16, "validation_split": 0.2},
}


def with_(spec, **sections):
    """``spec`` with some sections updated (one level deep)."""
    out = dict(spec)
    for key, value in sections.items():
        out[key] = {**spec[key], **value} if isinstance(value, dict) else value
    return out


def first_loss(run_dir) -> float:
    return float(next(csv.DictReader((Path(run_dir) / "history.csv").open()))["loss"])


# 1. --init-weights: a run directory, model.npz, best.npz or checkpoint.npz ----------------------------------
def test_init_weights_takes_a_run_directory_or_any_of_its_weight_files(tmp_path):
    cfg = write(tmp_path / "tiny.yaml", TINY)
    first = tmp_path / "first"
    assert run("train", cfg, "--out", first, "--epochs", "4").exit_code == 0
    shutil.copy(first / "model.npz", tmp_path / "best.npz")
    unfinished = tmp_path / "unfinished"  # no model.npz: the checkpoint's weights
    shutil.copytree(first, unfinished)
    (unfinished / "model.npz").unlink()
    losses = {}
    for name, source in [
        ("model", first / "model.npz"),
        ("best", tmp_path / "best.npz"),
        ("checkpoint", first / "checkpoint.npz"),
        ("dir", first),
        ("unfinished", unfinished),
    ]:
        r = run("train", cfg, "--out", tmp_path / f"warm-{name}", "--epochs", "1", "--init-weights", source)
        assert r.exit_code == 0, (name, r.output)
        losses[name] = first_loss(tmp_path / f"warm-{name}")
    assert run("train", cfg, "--out", tmp_path / "cold", "--epochs", "1").exit_code == 0
    assert len(set(losses.values())) == 1, losses  # the same weights, whichever file they came from
    assert losses["model"] < first_loss(tmp_path / "cold")


def test_init_weights_of_another_architecture_lists_what_differs(tmp_path):
    cfg = write(tmp_path / "tiny.yaml", TINY)
    assert run("train", cfg, "--out", tmp_path / "first", "--epochs", "1").exit_code == 0
    r = run(
        "train",
        cfg,
        "--set",
        "model.layers.0.units=8",
        "--out",
        tmp_path / "other",
        "--init-weights",
        tmp_path / "first",
    )
    assert r.exit_code == 2, r.output
    assert "the architectures differ" in r.output and "Did you mean" not in r.output
    assert "layer 0 dense: kernel (2, 16) in the file, (2, 8) in the config" in r.output
    assert "layer 1 dense_1: kernel (16, 2) in the file, (8, 2) in the config" in r.output
    assert not (tmp_path / "other").exists()
    deeper = with_(TINY, model={"layers": [TINY["model"]["layers"][0], *TINY["model"]["layers"]]})
    r = run("train", write(tmp_path / "deep.yaml", deeper), "--init-weights", tmp_path / "first" / "checkpoint.npz")
    assert r.exit_code == 2 and "layer 2 dense_2: kernel (16, 2), bias (2,) in the config, no weights in the file" in (
        r.output
    )


# 2. predict on the training file's layout ----------------------------------------------------------------
def _table(path, header: bool, n=60):
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        if header:
            f.write("id,a,b,t,c,note\n")
        for i in range(n):
            a, b, c = rng.normal(size=3)
            f.write(f"{i},{a:.4f},{b:.4f},{a - 2 * b + c:.4f},{c:.4f},row{i}\n")
    return path


def _table_config(tmp_path, header: bool):
    data = {"source": "csv", "path": str(_table(tmp_path / "train.csv", header)), "target": "t"}
    data |= {"drop": ["id", "note"], "test_split": 0.2, "scale": "standardize"}
    if not header:
        data |= {"header": False, "columns": ["id", "a", "b", "t", "c", "note"]}
    spec = {
        "name": "table",
        "seed": 0,
        "data": data,
        "model": {"input_shape": [3], "layers": [{"type": "dense", "units": 1}]},
        "loss": "mse",
        "metrics": ["mae"],
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 2, "batch_size": 8},
    }
    return write(tmp_path / "table.yaml", spec)


def _columns(src, dst, keep, header: bool):
    with open(src, newline="") as f:
        rows = list(csv.reader(f))
    names = ["id", "a", "b", "t", "c", "note"]
    idx = [names.index(k) for k in keep]
    with open(dst, "w") as f:
        for row in rows:
            f.write(",".join(row[i] for i in idx) + "\n")
    return dst


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
def test_predict_accepts_the_training_layout_and_names_the_columns_it_needs(tmp_path, header):
    cfg = _table_config(tmp_path, header)
    out = tmp_path / "run"
    assert run("train", cfg, "--out", out, "--quiet").exit_code == 0
    train = tmp_path / "train.csv"
    outputs = []
    for keep in (
        ["id", "a", "b", "t", "c", "note"],  # the training file itself
        ["id", "a", "b", "c", "note"],  # without the target
        ["a", "b", "c"],  # the features alone
    ):
        r = run("predict", out, _columns(train, tmp_path / f"in{len(keep)}.csv", keep, header))
        assert r.exit_code == 0, (keep, r.output)
        outputs.append(r.stdout)
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0].splitlines()) == 61
    r = run("predict", out, _columns(train, tmp_path / "short.csv", ["a", "c"], header))
    assert r.exit_code == 2
    assert "expected columns: a, b, c (the target and dropped columns may be present; they are ignored)" in r.output
    if header:
        assert r.output.strip().endswith("Missing: b")


# 3. eval with data.target_scale: metrics in the data's units -------------------------------------------------
def test_eval_reports_metrics_in_the_data_units_when_targets_were_scaled(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x @ np.array([50.0, -120.0, 80.0]) + 400 + rng.normal(0, 5, 300))[:, None]
    np.savez(tmp_path / "train.npz", x=x[:240], y=y[:240])
    np.savez(tmp_path / "test.npz", x=x[240:], y=y[240:])
    np.save(tmp_path / "test_x.npy", x[240:])
    spec = {
        "name": "scaled",
        "seed": 0,
        "data": {"source": "npz", "path": str(tmp_path / "train.npz"), "test_split": 0.2, "target_scale": 100},
        "model": {
            "input_shape": [3],
            "layers": [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 1}],
        },
        "loss": "mse",
        "metrics": ["mae", "rmse"],
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 5, "batch_size": 16},
    }
    out = tmp_path / "run"
    r = run("train", write(tmp_path / "c.yaml", spec), "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    assert "metrics in the data's units (target_scale undone); loss in training units" in r.output
    r = run("eval", out, "--data", tmp_path / "test.npz", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    pred = np.array([float(v) for v in run("predict", out, tmp_path / "test_x.npy").stdout.split()[1:]])
    truth = y[240:, 0]
    assert report["mae"] == pytest.approx(np.mean(np.abs(pred - truth)), rel=1e-4)
    assert report["rmse"] == pytest.approx(np.sqrt(np.mean((pred - truth) ** 2)), rel=1e-4)
    assert report["loss"] == pytest.approx(np.mean((pred / 100 - truth / 100) ** 2), rel=1e-3)  # as trained
    assert report["units"] == {"loss": "training", "metrics": "data"} and report["target_scale"] == 100
    r = run("eval", out)
    assert r.exit_code == 0 and "metrics in the data's units (target_scale undone); loss in training units" in r.output


# 4. a run stopped on NaN: what to change, not a resume ----------------------------------------------------------
def test_a_nonfinite_run_says_what_to_change_instead_of_resuming(tmp_path):
    out = tmp_path / "run"
    r = run("train", write(tmp_path / "c.yaml", DIVERGE), "--out", out)
    assert r.exit_code == 3
    # the diagnosis's own advice, causes first: the rate (5000x sgd's default) is the cause
    remedies = ["--set optimizer.learning_rate=0.01\n", "--set optimizer.clipnorm=1.0", "--try-advice --write-config"]
    for text in (r.output, run("eval", out).output):
        assert all(s in text for s in remedies), text
        assert f"dnn train {out / 'config.yaml'} --set" in text and "nonfinite_batch.npz" in text
        assert "--resume" not in text and "Resuming would repeat the same steps" in text
    r = run("eval", out)
    assert r.exit_code == 2 and "training stopped on non-finite values in the forward activation of layer" in r.output
    # the suggested command trains (and the clipped run finishes)
    fixed = tmp_path / "fixed"
    r = run("train", out / "config.yaml", "--set", "optimizer.clipnorm=1.0", "--out", fixed, "--epochs", "1")
    assert r.exit_code == 0, r.output
    # a run that merely has no model.npz yet is still told to resume
    (fixed / "model.npz").unlink()
    assert f"resume it with dnn train --resume {fixed}" in run("eval", fixed).output


# 5. --version and -h -------------------------------------------------------------------------------------------
def test_version_and_short_help():
    r = run("--version")
    assert r.exit_code == 0 and r.output == f"dnn {dnncli.__version__}\n"
    for args in (["-h"], ["train", "-h"], ["eval", "-h"], ["data", "-h"], ["data", "list", "-h"]):
        r = run(*args)
        assert r.exit_code == 0 and r.output.startswith("Usage: dnn"), (args, r.output)
    assert "-h, --help" in run("-h").output


# 6. install hints that can be installed -----------------------------------------------------------------------
def test_plot_hint_names_what_can_be_installed(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run("train", write(tmp_path / "c.yaml", TINY), "--out", out, "--epochs", "1").exit_code == 0
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import matplotlib fails
    r = run("plot", out)
    assert r.exit_code == 2
    assert "pip install '.[plot]' in a checkout of dnncli, or pip install matplotlib" in r.output
    assert "pip install '.[plot]'" in run("plot", "--help").output
    hits = [p for p in (ROOT / "dnncli").rglob("*.py") if "dnncli[" in p.read_text()]
    assert not hits, hits


# 7. display ---------------------------------------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.batches, self.rows = [], []

    def train_begin(self, info): ...

    def batch_end(self, epoch, done, total, loss):
        self.batches.append((epoch, done, loss))

    def epoch_end(self, row, layers):
        self.rows.append(row)

    def train_end(self, result): ...


def test_progress_shows_the_running_mean_of_the_epoch(tmp_path):
    from dnncli.experiment.config import load
    from dnncli.experiment.run import TrainingRun

    rec = Recorder()
    spec = with_(TINY, training={"batch_size": 48, "validation_split": 0.0})  # 160 samples: 48, 48, 48, 16
    run_ = TrainingRun.create(load(write(tmp_path / "c.yaml", spec)), out=tmp_path / "run", reporter=rec)
    run_.train()
    expected, prev, sums = [], 0, {}
    for r in csv.DictReader((tmp_path / "run" / "losses.csv").open()):
        epoch, n = int(r["epoch"]) - 1, int(r["samples"]) - prev
        prev = int(r["samples"])
        total, seen = sums.get(epoch, (0.0, 0))
        sums[epoch] = (total + float(r["loss"]) * n, seen + n)
        expected.append((epoch, sums[epoch][1], sums[epoch][0] / sums[epoch][1]))
    assert [b[:2] for b in rec.batches] == [e[:2] for e in expected]
    assert [b[2] for b in rec.batches] == pytest.approx([e[2] for e in expected], rel=1e-5)  # not the last batch's
    assert [rec.batches[-5][2], rec.batches[-1][2]] == pytest.approx([r["loss"] for r in rec.rows], rel=1e-6)


RESTORE = with_(
    TINY,
    training={
        "epochs": 15,
        "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 2, "restore_best_weights": True}},
    },
)


def _best_epoch(run_dir) -> int:
    rows = list(csv.DictReader((Path(run_dir) / "history.csv").open()))
    return int(min(rows, key=lambda r: float(r["val_loss"]))["epoch"])


def test_restoring_the_best_weights_is_said_piped_quiet_and_live(tmp_path):
    cfg = write(tmp_path / "c.yaml", RESTORE)
    for args in ([], ["--quiet"]):
        out = tmp_path / f"run{len(args)}"
        r = run("train", cfg, "--out", out, *args)
        assert r.exit_code == 0, r.output
        said = f"Restoring model weights from the end of the best epoch: {_best_epoch(out)}."
        assert said in r.output, r.output
    from dnncli.cli.views.training import LiveReporter
    from dnncli.experiment.config import load
    from dnncli.experiment.run import TrainingRun

    console = Console(file=io.StringIO(), force_terminal=True, width=80, height=24)
    TrainingRun.create(load(cfg), out=tmp_path / "live", reporter=LiveReporter(console)).train()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())
    assert f"Restoring model weights from the end of the best epoch: {_best_epoch(tmp_path / 'live')}." in text


def test_counts_agree_with_their_nouns(tmp_path):
    one = with_(
        TINY,
        model={"layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
        training={
            "batch_size": 160,
            "epochs": 30,
            "validation_split": 0.2,
            "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 0.5}},
        },
    )
    out = tmp_path / "run"
    r = run("train", write(tmp_path / "c.yaml", one), "--out", out)
    assert r.exit_code == 0, r.output
    assert "(1 step per epoch)" in r.output and "1 dense layer watched" in r.output
    assert "did not improve for 1 epoch." in r.output
    x = np.zeros((1, 2))
    np.savez(tmp_path / "one.npz", x=x, y=np.zeros(1, np.int64))
    assert "(1 sample)" in run("eval", out, "--data", tmp_path / "one.npz").output


def test_a_column_keeps_one_number_format():
    from dnncli.cli.views.numbers import fmt, fmt_column
    from dnncli.cli.views.results import eval_tables
    from dnncli.cli.views.tables import show
    from dnncli.cli.views.training import PlainReporter

    assert fmt_column([48097.8097, 1.169e5]) == ["4.8098e+04", "1.1690e+05"]
    assert fmt_column([2.3026, 0.0015, 0.5]) == ["2.3026", "0.0015", "0.5000"]
    assert fmt_column([430.75, 12.3, 0.0]) == ["430.75", "12.300", "0"]
    assert fmt_column([1234.5, 0.0005]) == ["1.2345e+03", "5.0000e-04"]
    assert fmt(np.float32(48097.81)) == "48097.8" and fmt(1e-5) == "1.0000e-05"
    console = Console(file=io.StringIO(), width=80, height=24)
    show(console, eval_tables(console, {"run_dir": "r", "data": "d", "samples": 5, "loss": 1.169e5, "mae": 48097.8097}))
    text = console.file.getvalue()
    assert "1.1690e+05" in text and "4.8098e+04" in text
    stream = io.StringIO()
    plain = PlainReporter(stream)
    plain._start({"metrics": [], "validation": 0})
    for epoch, loss in enumerate([1.169e5, 48097.8097, 12.5], start=1):
        plain.epoch_end({"epoch": epoch, "loss": loss, "learning_rate": 0.001, "time": 0.1}, [])
    lines = stream.getvalue().split("\n")
    assert "1.1690e+05" in lines[0] and "4.8098e+04" in lines[1] and "1.2500e+01" in lines[2]  # scientific stays
    assert all("0.0010" in line for line in lines[:3])


def test_run_files_get_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert run("train", write(tmp_path / "c.yaml", TINY), "--out", out, "--epochs", "1").exit_code == 0
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.is_file()}
        assert {"config.yaml", "history.csv", "checkpoint.npz", "model.npz", "preprocessing.npz"} <= set(modes)
        assert all(m == 0o644 for m in modes.values()), {k: oct(m) for k, m in modes.items()}
        os.chmod(out / "history.csv", 0o600)  # a file the user restricted keeps its mode when it is replaced
        from dnncli.files import atomic_write_text

        atomic_write_text(out / "history.csv", "epoch\n")
        assert stat.S_IMODE((out / "history.csv").stat().st_mode) == 0o600
    finally:
        os.umask(old)


# 8. the README lists every command ------------------------------------------------------------------------------
def test_readme_command_table_lists_every_command_and_version():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Commands")[1].split("\n\n")[1]
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [f"data {c.name}" for g in app.registered_groups for c in g.typer_instance.registered_commands]
    for name in names:
        assert re.search(rf"^\| `dnn {re.escape(name)}\b", table, re.M), name
    assert "`dnn --version`" in table and "-h" in table


def test_a_headerless_row_that_fits_two_layouts_is_refused_not_guessed(tmp_path):
    """One target and one dropped column: a 4-value row may lack either, so its meaning cannot be told."""
    rng = np.random.default_rng(1)
    with open(tmp_path / "train.csv", "w") as f:
        for i in range(40):
            a, b, c = rng.normal(size=3)
            f.write(f"{a:.3f},{a + b:.3f},{b:.3f},{i},{c:.3f}\n")
    data = {"source": "csv", "path": str(tmp_path / "train.csv"), "header": False}
    data |= {"columns": ["a", "t", "b", "d", "c"], "target": "t", "drop": ["d"], "test_split": 0.2}
    spec = {
        "name": "amb",
        "data": data,
        "model": {"input_shape": [3], "layers": [{"type": "dense", "units": 1}]},
        "loss": "mse",
        "training": {"epochs": 1},
    }
    cfg = write(tmp_path / "amb.yaml", spec)
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    (tmp_path / "four.csv").write_text("0.5,1,-2.0,0.1\n")
    r = run("predict", tmp_path / "run", tmp_path / "four.csv")
    assert r.exit_code == 2
    assert "4 values a row fit more than one layout" in r.output and "add a header line" in r.output
    (tmp_path / "five.csv").write_text("0.5,1,-2.0,7,0.1\n")
    (tmp_path / "three.csv").write_text("0.5,-2.0,0.1\n")
    five, three = (
        run("predict", tmp_path / "run", tmp_path / "five.csv"),
        run("predict", tmp_path / "run", tmp_path / "three.csv"),
    )
    assert five.exit_code == three.exit_code == 0 and five.stdout == three.stdout
