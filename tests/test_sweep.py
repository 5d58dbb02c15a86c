"""dnn sweep on Ray Tune: sampling, failures, repeats, ASHA, results, resume after SIGKILL, a cluster by address."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli import app

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "name": "tiny",
    "seed": 42,
    "data": {"source": "synthetic", "generator": "moons", "n_samples": 200, "noise": 0.2},
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "dropout", "rate": 0.1},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 3, "batch_size": 32, "validation_split": 0.2},
}


def strict(text):
    def refuse(token):
        raise ValueError(token)

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module", autouse=True)
def one_ray():
    """One local Ray instance for the module's in-process sweeps (the driver joins it)."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def make(tmp_path: Path, sweep: dict, base: dict = BASE) -> Path:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"config": "base.yaml"} | sweep))
    return path


def sweep(path: Path, out: Path, *args):
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(out), "--json", *map(str, args)])
    assert r.exit_code == 0, r.output
    return strict(r.output)


def test_grid_trains_every_combination_and_writes_results_and_a_best_config_that_trains(tmp_path):
    path = make(
        tmp_path,
        {
            "parameters": {
                "optimizer.learning_rate": {"values": [0.003, 0.03]},
                "training.batch_size": {"values": [16, 64]},
            }
        },
    )
    report = sweep(path, tmp_path / "out", "--workers", "2")
    assert report["metric"] == "val_loss" and report["mode"] == "min"
    combos = {(t["params"]["optimizer.learning_rate"], t["params"]["training.batch_size"]) for t in report["trials"]}
    assert combos == {(0.003, 16), (0.003, 64), (0.03, 16), (0.03, 64)}
    assert all(t["status"] == "completed" and t["epochs"] == 3 for t in report["trials"])
    for t in report["trials"]:  # one CPU a trial (resources_per_trial's default): one BLAS thread, in the worker
        record = json.loads((Path(t["run_dir"]) / "trial.json").read_text())
        assert record["cpus"] == 1 and record["blas_threads"] == 1
    best = min(report["trials"], key=lambda t: t["metric"])
    assert report["best"]["run_dir"] == best["run_dir"] and report["best"]["metric"] == best["metric"]
    for t in report["trials"]:  # an ordinary run directory: dnn eval works on it
        assert (Path(t["run_dir"]) / "model.npz").exists()
        history = list(csv.DictReader((Path(t["run_dir"]) / "history.csv").open()))
        assert min(float(r["val_loss"]) for r in history) == pytest.approx(t["metric"])
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert len(rows) == 4 and {"optimizer.learning_rate", "training.batch_size", "status", "metric", "seconds"} <= set(
        rows[0]
    )
    best_yaml = yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())
    assert best_yaml["optimizer"]["learning_rate"] == best["params"]["optimizer.learning_rate"]
    r = CliRunner().invoke(app, ["train", str(tmp_path / "out" / "best.yaml"), "--out", str(tmp_path / "again"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["eval", best["run_dir"]])
    assert r.exit_code == 0


def test_random_and_tpe_sample_values_ranges_log_ranges_and_wildcard_keys(tmp_path):
    params = {
        "optimizer.learning_rate": {"min": 1e-4, "max": 1e-1, "log": True},
        "model.layers.1.rate": {"min": 0.1, "max": 0.5},
        "model.layers.*.units": {"values": [8, 16]},
    }
    base = BASE | {
        "model": BASE["model"]
        | {
            "layers": [
                BASE["model"]["layers"][0],
                BASE["model"]["layers"][1],
                {"type": "dense", "units": 2, "activation": "softmax"},
            ]
        }
    }
    for method in ("random", "tpe"):
        path = (
            make(tmp_path / method, {"method": method, "trials": 4, "parameters": params}, base)
            if ((tmp_path / method).mkdir() or True)
            else None
        )
        report = sweep(path, tmp_path / method / "out", "--workers", "2")
        assert len(report["trials"]) == 4 and all(t["status"] == "completed" for t in report["trials"])
        for t in report["trials"]:
            assert 1e-4 <= t["params"]["optimizer.learning_rate"] <= 1e-1
            assert 0.1 <= t["params"]["model.layers.1.rate"] <= 0.5
            assert t["params"]["model.layers.*.units"] in (8, 16)
            layers = yaml.safe_load((Path(t["run_dir"]) / "config.yaml").read_text())["model"]["layers"]
            # the wildcard set every layer that has units: the hidden layer and the output layer
            assert layers[0]["units"] == layers[2]["units"] == t["params"]["model.layers.*.units"]
            assert layers[1]["rate"] == pytest.approx(t["params"]["model.layers.1.rate"])


def test_a_diverging_trial_is_failed_with_its_reason_and_the_others_complete(tmp_path):
    base = BASE | {"optimizer": {"name": "sgd", "learning_rate": 0.05}}
    path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.05, 1e12]}}}, base)
    report = sweep(path, tmp_path / "out", "--workers", "2")
    status = {t["params"]["optimizer.learning_rate"]: t for t in report["trials"]}
    assert status[0.05]["status"] == "completed"
    assert status[1e12]["status"] == "failed" and "Non-finite values" in status[1e12]["reason"]
    assert status[1e12]["metric"] is None and report["best"]["params"] == {"optimizer.learning_rate": 0.05}


def test_repeats_give_mean_and_spread_over_seeds(tmp_path):
    path = make(tmp_path, {"repeats": 3, "parameters": {"optimizer.learning_rate": {"values": [0.01]}}})
    report = sweep(path, tmp_path / "out", "--workers", "2")
    assert len(report["trials"]) == 3
    seeds = sorted(yaml.safe_load((Path(t["run_dir"]) / "config.yaml").read_text())["seed"] for t in report["trials"])
    assert seeds == [42, 43, 44]
    values = [t["metric"] for t in report["trials"]]
    assert all(
        t["mean"] == pytest.approx(np.mean(values)) and t["spread"] == pytest.approx(np.std(values))
        for t in report["trials"]
    )


def test_asha_stops_a_hopeless_trial(tmp_path):
    base = BASE | {"training": BASE["training"] | {"epochs": 8}}
    sweep_spec = {
        "parameters": {"optimizer.learning_rate": {"values": [0.03, 1e-7]}},
        "early_stopping": {"method": "asha", "grace_epochs": 1, "reduction_factor": 2},
    }
    report = sweep(make(tmp_path, sweep_spec, base), tmp_path / "out", "--workers", "1")
    by_rate = {t["params"]["optimizer.learning_rate"]: t for t in report["trials"]}
    assert by_rate[0.03]["status"] == "completed" and by_rate[0.03]["epochs"] == 8
    assert by_rate[1e-7]["status"] == "pruned" and by_rate[1e-7]["epochs"] < 8


def test_every_override_is_checked_before_any_trial(tmp_path):
    path = make(tmp_path, {"parameters": {"optimizer.learnin_rate": {"values": [0.1]}}})
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "parameters.optimizer.learnin_rate" in r.output and "learning_rate" in r.output
    assert not (tmp_path / "out" / "trials").exists()
    path = make(tmp_path, {"metric": "val_acuracy", "parameters": {"optimizer.learning_rate": {"values": [0.1]}}})
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out2")])
    assert r.exit_code == 2 and "metric 'val_acuracy' is not logged" in r.output


def test_sweep_without_ray_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.1]}}})
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "pip install '.[sweep]'" in r.output


def test_expect_compares_trials_by_parameters_and_fails_inside_the_noise(tmp_path):
    sweep_spec = {
        "repeats": 2,
        "parameters": {"optimizer.learning_rate": {"values": [1e-7, 0.03]}},
        "expect": [
            {"claim": "learning learns", "measure": "final.loss", "lower": {"learning_rate": 0.03},
             "than": {"learning_rate": 1e-7}},
            {"measure": "final.epoch", "lower": {"learning_rate": 0.03}, "than": {"learning_rate": 1e-7}},
        ],
    }  # fmt: skip
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["sweep", str(make(tmp_path, sweep_spec)), "--out", str(out), "--json"])
    assert r.exit_code == 1, r.output  # the second cannot hold: every trial runs its 3 epochs
    verdicts = strict(r.stdout)["comparisons"]
    assert verdicts[0]["passed"] and verdicts[0]["side"]["n"] == 2 and verdicts[0]["claim"] == "learning learns"
    assert not verdicts[1]["passed"] and "equal" in verdicts[1]["reason"]
    r = CliRunner().invoke(app, ["check", str(out), "--json"])  # judged again from the sweep's directory
    assert r.exit_code == 1
    assert [v["passed"] for v in strict(r.stdout)["comparisons"]] == [True, False]


def test_a_trial_runs_as_many_blas_threads_as_the_cpus_ray_gives_it(tmp_path):
    spec = {"parameters": {"optimizer.learning_rate": {"values": [0.01]}}, "resources_per_trial": {"cpu": 2}}
    report = sweep(make(tmp_path, spec), tmp_path / "out")
    record = json.loads((Path(report["trials"][0]["run_dir"]) / "trial.json").read_text())
    assert record["cpus"] == 2 and record["blas_threads"] == 2  # read in the Ray worker, while it trained
    assert yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())["training"]["threads"] == "auto"
    too_many = {**spec, "resources_per_trial": {"cpu": 3}}
    r = CliRunner().invoke(app, ["sweep", str(make(tmp_path, too_many)), "--out", str(tmp_path / "more")])
    assert r.exit_code == 2 and "resources_per_trial asks 3 CPUs a trial, and the cluster has 2" in r.output
