"""dnn course: every experiment of configs/course/ says where its claim comes from and checks it; the fastest few run
here (CI) and their claims hold as the experiments say; dnn check judges a course sweep's directory again."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnncli.cli import app
from dnncli.experiment import config as config_mod
from dnncli.experiment.course import list_experiments
from dnncli.experiment.sweep import read_sweep

COURSE = Path(__file__).resolve().parents[1] / "configs" / "course"
FAST = ["dnn_architecture", "leaky_relu", "clipping"]  # about 3 s together on 2 cores


def strict(text):
    def refuse(token):
        raise ValueError(token)

    return json.loads(text, parse_constant=refuse)


def test_every_experiment_names_its_lesson_quotes_it_and_checks_it():
    experiments = list_experiments(COURSE)
    names = [e.name for e in experiments]
    claims = ["dropout", "l1_l2", "batch_normalization", "relu_he", "xavier", "clipping", "learning_rate"]
    claims += ["batch_size", "momentum", "leaky_relu", "augmentation"]
    assert set(claims) <= set(names)  # one experiment per claim of issue 24, and the lesson's own network
    for e in experiments:
        assert e.lesson.startswith(("Module 3", "notes")), e.name
        assert e.says.startswith('"'), e.name
        assert e.claims, e.name
        if e.kind == "sweep":
            spec = read_sweep(e.path)  # its expect: checked against its parameters and base config
            assert spec.method == "grid" and spec.repeats >= 3 and spec.expect, e.name
        else:
            assert config_mod.load(e.path).resolved["expect"], e.name


def test_the_fastest_experiments_run_and_their_claims_hold(tmp_path):
    out, figures = tmp_path / "course", tmp_path / "figures"
    args = ["course", *[f"--run={n}" for n in FAST], "--out", str(out), "--plot", str(figures), "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    report = strict(r.stdout)
    assert report["passed"] and [e["name"] for e in report["experiments"]] == FAST
    by_name = {e["name"]: e for e in report["experiments"]}
    lesson = by_name["dnn_architecture"]["check"]
    assert [v["expected"] for v in lesson["verdicts"]] == [
        "test.accuracy >= 0.9",
        "val_accuracy >= 0.9 by epoch 5",
        "flags: none",
        "status: completed",
    ]
    assert all(v["passed"] for v in lesson["verdicts"])
    leaky = by_name["leaky_relu"]["comparisons"]
    assert leaky[0]["side"]["mean"] > leaky[0]["other"]["mean"] + 0.1  # leaky learns; relu stays near chance
    assert leaky[0]["side"]["n"] == leaky[0]["other"]["n"] == 3
    clipping = {c["measure"]: c for c in by_name["clipping"]["comparisons"]}
    assert clipping["flags.nonfinite"]["side"]["values"] == [0, 0, 0]  # clipped: never overflows
    assert clipping["flags.nonfinite"]["other"]["values"] == [1, 1, 1]  # unclipped: always does
    assert min(clipping["flags.collapsed"]["side"]["values"]) >= 5  # but the clipped layers collapse
    assert all(c["passed"] for c in clipping.values())
    for name in FAST:
        assert (figures / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a course sweep is an ordinary sweep directory: dnn check judges it again from its files, the same
    r = CliRunner().invoke(app, ["check", str(out / "clipping"), "--json"])
    assert r.exit_code == 0, r.output
    again = strict(r.stdout)["comparisons"]
    assert [c["side"]["values"] for c in again] == [c["side"]["values"] for c in by_name["clipping"]["comparisons"]]
    assert (out / "clipping" / "results.csv").exists() and len(list((out / "clipping" / "trials").iterdir())) == 6
    r = CliRunner().invoke(app, ["check", str(out / "dnn_architecture")])
    assert r.exit_code == 0 and "4 of 4 expectations hold" in r.output


def test_the_table_says_how_many_claims_hold(tmp_path):
    r = CliRunner().invoke(app, ["course", "--run", "leaky_relu", "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "The course, reproduced: 2 of 2 claims hold" in r.stdout
    assert "leaky ReLU rescues dying units" in r.stdout and "pass" in r.stdout
    assert "1 experiment, 6 training runs" in r.stdout


def test_list_and_refusals(tmp_path):
    r = CliRunner().invoke(app, ["course", "--list", "--json"])
    assert r.exit_code == 0 and {e["name"] for e in strict(r.stdout)["experiments"]} >= set(FAST)
    r = CliRunner().invoke(app, ["course"])
    assert r.exit_code == 0 and "The course:" in r.stdout and "dropout" in r.stdout
    r = CliRunner().invoke(app, ["course", "--run", "dropuot"])
    assert r.exit_code == 2 and "Did you mean 'dropout'?" in r.output
    r = CliRunner().invoke(app, ["course", "--run", "dropout", "--all"])
    assert r.exit_code == 2 and "not both" in r.output
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("x")
    r = CliRunner().invoke(app, ["course", "--run", "dropout", "--out", str(tmp_path / "busy")])
    assert r.exit_code == 2 and "not empty" in r.output
    r = CliRunner().invoke(app, ["course", "--dir", str(tmp_path / "none"), "--list"])
    assert r.exit_code == 2 and "no course folder" in r.output


@pytest.mark.parametrize("name", ["dropout", "batch_normalization"])
def test_sweeps_state_what_they_compare_in_words(name):
    spec = read_sweep(COURSE / f"{name}.yaml")
    sentence = spec.expect[0].sentence()
    assert sentence.startswith(spec.expect[0].measure.text()) and " than with " in sentence
