"""Tuning: the learning-rate range test (and, below, comparing runs)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnncli.cli import app
from dnncli.experiment import api
from dnncli.experiment.config import load
from dnncli.experiment.lrfind import lr_find

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "configs" / "quickstart.yaml"


def _refuse(token):
    raise ValueError(f"not strict JSON: {token}")


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_lr_find_suggests_within_a_decade_of_the_best_fixed_rate(tmp_path):
    report = lr_find(load(QUICK))
    final = {}
    for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        overrides = [f"optimizer.learning_rate={lr}", "training.epochs=3", "training.callbacks={}"]
        final[lr] = api.train(QUICK, overrides, out=tmp_path / f"grid-{lr}").history[-1]["val_loss"]
    best = min(final, key=final.get)
    assert 0.1 <= report["suggested"] / best <= 10, (report["suggestions"], final)
    assert report["suggestions"]["min_over_10"] == pytest.approx(report["min_loss_rate"] / 10)
    assert len(report["rates"]) == len(report["losses"]) == report["steps"] <= 100
    assert report["rates"][0] == pytest.approx(1e-7) and all(
        b > a for a, b in zip(report["rates"], report["rates"][1:])
    )


def test_lr_find_stops_when_the_loss_diverges_and_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = lr_find(load(ROOT / "configs" / "binary_classifier.yaml"), max_lr=1e3, steps=200)
    assert report["steps"] < 200 and ("diverged" in report["stopped"] or "non-finite" in report["stopped"])
    assert not (tmp_path / "runs").exists()


def test_lr_find_command(tmp_path):
    r = run("lr-find", QUICK, "--plot", tmp_path / "lr.png", "--steps", "60")
    assert r.exit_code == 0, r.output
    assert "Suggested:" in r.output and "Use: --set optimizer.learning_rate=" in r.output
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(run("lr-find", QUICK, "--steps", "60", "--json").output, parse_constant=_refuse)
    assert set(report) >= {"rates", "losses", "smoothed", "suggestions", "suggested", "command"}
    r = run("lr-find", QUICK, "--min", "1", "--max", "0.1")
    assert r.exit_code == 2 and "--max must be larger than --min" in r.output
    r = run("lr-find", QUICK, "--plot", tmp_path / "lr.png")
    assert r.exit_code == 2 and "exists already" in r.output


# compare ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_modes(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    for mode in ("batch", "stochastic", "mini-batch"):
        overrides = [f"training.batching={mode}", "training.epochs=2", "training.callbacks={}", "data.n_samples=300"]
        api.train(QUICK, overrides + [f"name=qs-{mode}"], out=root / "sweep" / "trials" / mode)
    return root / "sweep"


def test_compare_table_shows_the_keys_that_differ_and_the_metric(three_modes):
    r = run("compare", *sorted((three_modes / "trials").iterdir()))
    assert r.exit_code == 0, r.output
    assert "batching" in r.output and "best val_loss" in r.output and "…" not in r.output
    assert "batch_size" not in r.output.split("\n")[1]  # the same in every run: not a column
    report = json.loads(run("compare", three_modes, "--json", "--metric", "accuracy").output, parse_constant=_refuse)
    assert report["mode"] == "max" and report["keys"] == ["training.batching"]
    assert sorted(r["params"]["training.batching"] for r in report["runs"]) == ["batch", "mini-batch", "stochastic"]
    for row in report["runs"]:
        assert row["epochs"] == 2 and row["best"] >= row["final"] - 1e-12 and row["best_epoch"] in (1, 2)


def test_compare_plots_against_samples_from_each_runs_step_losses(three_modes, tmp_path):
    for x in ("epoch", "step", "samples", "seconds"):
        r = run("compare", three_modes, "--x", x, "--plot", tmp_path / f"{x}.png")
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"{x}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import csv

    rows = {
        m: list(csv.DictReader((three_modes / "trials" / m / "losses.csv").open())) for m in ("batch", "stochastic")
    }
    n_train = int(rows["batch"][-1]["samples"]) // 2
    assert len(rows["batch"]) == 2 and len(rows["stochastic"]) == 2 * n_train  # a row per step
    assert [int(r["samples"]) for r in rows["stochastic"]] == list(range(1, 2 * n_train + 1))
    r = run("compare", three_modes, "--x", "samples", "--metric", "accuracy")
    assert r.exit_code == 0  # no plot asked: the table
    r = run("compare", three_modes, "--x", "samples", "--metric", "accuracy", "--plot", tmp_path / "bad.png")
    assert r.exit_code == 2 and "use --x epoch for accuracy" in r.output
    r = run("compare", three_modes, "--metric", "recall")
    assert r.exit_code == 2 and "not logged by every run" in r.output
    r = run("compare", tmp_path)
    assert r.exit_code == 2 and "not a run directory" in r.output


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweep_files_validate(path):
    from dnncli.experiment.sweep import grid, read_sweep

    spec = read_sweep(path)  # every override checked against its base config, as dnn sweep does first
    assert spec.config_path.exists() and spec.parameters
    if spec.method == "grid":
        assert len(grid(spec)) >= 2


def test_compare_takes_a_folder_of_sweeps(three_modes, tmp_path):
    """Sweeps go to runs/sweeps/NAME-TIME by default: dnn compare runs/sweeps compares every trial of every one."""
    r = run("compare", three_modes.parent, "--json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["runs"]) == 3


def test_a_sweep_may_rank_by_val_metrics_of_a_validation_file(tmp_path):
    import numpy as np
    import yaml

    from dnncli.experiment.sweep import read_sweep

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tr.npz", x=rng.normal(size=(40, 2)), y=rng.integers(0, 2, 40))
    np.savez(tmp_path / "va.npz", x=rng.normal(size=(10, 2)), y=rng.integers(0, 2, 10))
    base = {
        "data": {"source": "npz", "path": str(tmp_path / "tr.npz"), "validation_path": str(tmp_path / "va.npz")},
        "model": {"input_shape": [2], "layers": [{"type": "dense", "units": 2, "activation": "softmax"}]},
        "loss": "sparse_categorical_crossentropy",
        "optimizer": {"name": "sgd"},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"config": "base.yaml", "metric": "val_loss", "parameters": {"optimizer.learning_rate": {"values": [0.1]}}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    assert read_sweep(tmp_path / "sweep.yaml").metric == "val_loss"
