"""expect: in a config (each kind parsed, resolved, judged; each error with its file, line and nearest name; dnn train
exits 1 and keeps the run; dnn check judges a finished run the same) and in a sweep file (comparisons on small sweeps
whose outcomes are known: run directories written by hand, so that each verdict is certain)."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli import app
from dnncli.errors import DnnError
from dnncli.experiment import config as config_mod
from dnncli.experiment.expect.bounds import parse_bound, parse_by_epoch
from dnncli.experiment.expect.compare import judge, parse_comparisons
from dnncli.experiment.expect.measures import Measure, Outcome, measure, parse_measure

BASE = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "synthetic", "generator": "blobs", "n_samples": 300, "n_features": 4, "scale": "standardize"},
    "model": {
        "input_shape": [4],
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ],
    },
    "loss": "binary_crossentropy",
    "metrics": ["accuracy"],
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 4, "batch_size": 32, "validation_split": 0.2},
}


def strict(text):
    def refuse(token):
        raise ValueError(token)

    return json.loads(text, parse_constant=refuse)


def write(tmp_path: Path, expect, base: dict = BASE, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    text = yaml.safe_dump({k: v for k, v in base.items()}, sort_keys=False)
    if expect is not None:
        text += "expect:\n" + "".join(f"  {line}\n" for line in expect)
    path.write_text(text)
    return path


def error(path: Path) -> str:
    with pytest.raises(DnnError) as info:
        config_mod.load(path)
    return str(info.value)


# bounds ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "op", "number"),
    [(">= 0.9", ">=", 0.9), ("<0.1", "<", 0.1), ("== 0", "==", 0.0), ("at least 0.9", ">=", 0.9),
     ("at most 1e-3", "<=", 0.001), ("above -2", ">", -2.0), ("below .5", "<", 0.5), ("exactly 3", "==", 3.0)],
)  # fmt: skip
def test_bounds_in_symbols_and_words(text, op, number):
    b = parse_bound(text, "x")
    assert (b.op, b.number) == (op, number)
    assert b.holds(number) == (op in (">=", "<=", "=="))
    assert not b.holds(None) and not b.holds(float("nan"))


@pytest.mark.parametrize("text", ["=> 0.9", "0.9", ">= ", ">= nan", ">= inf", "at leats 1", 0.9, None, ">= 1 2"])
def test_malformed_bounds_say_what_a_bound_looks_like(text):
    with pytest.raises(DnnError, match=re.escape("must be a bound such as '>= 0.9'")):
        parse_bound(text, "x")


def test_reaching_a_bound_by_an_epoch():
    bound, epoch = parse_by_epoch(">= 0.9 by epoch 10", "x")
    assert bound.text() == ">= 0.9" and epoch == 10
    for bad in (">= 0.9 by 10", ">= 0.9 by epoch 0", ">= 0.9 by epoch 2.5", "0.9 by epoch 3"):
        with pytest.raises(DnnError):
            parse_by_epoch(bad, "x")


# parsing a config's expect: ---------------------------------------------------------------------------------------
def test_every_kind_resolves_to_its_canonical_form(tmp_path):
    path = write(
        tmp_path,
        [
            "claim: a tiny network learns",
            "test.accuracy: at least 0.8",
            "final: {val_loss: '< 1', epoch: '== 4'}",
            "best.val_accuracy: '>= 0.5'",
            "gap.loss: '< 0.5'",
            "weights: {norm: '> 0', zero: '<= 1', max: '< 100'}",
            "time.epoch: '< 60'",
            "jitter.loss: '>= 0'",
            "path.straightness: '> 0'",
            "reaches: {val_accuracy: '>= 0.5 by epoch 4'}",
            "flags: {vanishing: none, dead: '== 0', exploding: none}",
            "status: [completed, early_stopped]",
        ],
    )
    expect = config_mod.load(path).resolved["expect"]
    assert expect["test"] == {"accuracy": ">= 0.8"} and expect["final"] == {"val_loss": "< 1", "epoch": "== 4"}
    assert expect["best"] == {"val_accuracy": ">= 0.5"} and expect["reaches"] == {"val_accuracy": ">= 0.5 by epoch 4"}
    assert expect["flags"] == {"vanishing": "none", "dead": "== 0", "exploding": "none"}
    assert expect["claim"] == "a tiny network learns" and expect["status"] == ["completed", "early_stopped"]
    again = tmp_path / "again.yaml"  # the resolved config (dnn validate's output) is itself a valid config
    again.write_text(config_mod.load(path).to_yaml())
    assert config_mod.load(again).resolved["expect"] == expect
    assert "expect" not in config_mod.load(write(tmp_path, None, name="plain.yaml")).resolved


@pytest.mark.parametrize(
    ("lines", "offset", "where", "says"),
    [
        (["test.acuracy: '>= 1'"], 0, "expect.test.acuracy", "Did you mean 'accuracy'?"),
        (["tset.accuracy: '>= 1'"], 0, "expect.tset.accuracy", "Did you mean 'test'?"),
        (["finale: {loss: '< 1'}"], 0, "expect.finale", "Did you mean 'final'?"),
        (["test: {accuracy: '=> 0.9'}"], 0, "expect.test.accuracy", "must be a bound such as '>= 0.9'"),
        (["test:", "  loss: '< 1'", "  accuracy: 0.9"], 2, "expect.test.accuracy", "Received: 0.9"),
        (["flags: {vanish: none}"], 0, "expect.flags.vanish", "Did you mean 'vanishing'?"),
        (["flags: {dead: [dense_9]}"], 0, "expect.flags.dead", "Did you mean 'dense_1'?"),
        (["flags: {dead: [7]}"], 0, "expect.flags.dead", "layer 7 is not one of the model's layers (0..1)"),
        (["flags: {dead: maybe}"], 0, "expect.flags.dead", "must be none, any, a list of layers"),
        (["flags: [dead]"], 0, "expect.flags", "must be none (no flag raised)"),
        (["reaches: {val_accuracy: '>= 0.9 by 3'}"], 0, "expect.reaches.val_accuracy", "'>= 0.9 by epoch 10'"),
        (["reaches: {val_acc: '>= 0.9 by epoch 3'}"], 0, "expect.reaches.val_acc", "Did you mean 'val_accuracy'?"),
        (["status: done"], 0, "expect.status", "must be one of completed, early_stopped, finished, nonfinite"),
        (["weights.nrom: '< 1'"], 0, "expect.weights.nrom", "Did you mean 'norm'?"),
        (["test: {accuracy: '> 0.5'}", "test.loss: '< 1'"], 1, "expect.test.loss", "given twice"),
        (["epochs_to.loss: '< 3'"], 0, "expect.epochs_to.loss", "reaches: {loss: '>= 0.9 by epoch 10'}"),
    ],
)
def test_each_error_names_the_file_line_key_and_nearest_name(tmp_path, lines, offset, where, says):
    message = error(write(tmp_path, lines))
    line = len(yaml.safe_dump(BASE, sort_keys=False).splitlines()) + 2 + offset  # after the base and "expect:"
    assert message.startswith(f"{tmp_path / 'c.yaml'}:{line}: {where}: "), message
    assert says in message


def test_val_measures_need_a_validation_split(tmp_path):
    base = BASE | {"training": {"epochs": 2}}
    message = error(write(tmp_path, ["gap.loss: '< 0.1'"], base))
    assert "gap.loss compares loss with val_loss, which this run does not log" in message
    assert "validation_split" in message
    assert "validation_split" in error(write(tmp_path, ["final.val_loss: '< 1'"], base))


def test_an_expectation_given_by_set_is_named_as_such(tmp_path):
    with pytest.raises(DnnError, match=r"--set expect.test.accuracy: .*must be a bound"):
        config_mod.load(write(tmp_path, None), ["expect.test.accuracy=high"])


# judging a run ----------------------------------------------------------------------------------------------------
def test_train_shows_verdicts_exits_1_keeps_the_run_and_check_agrees(tmp_path):
    lines = [
        "test.accuracy: '>= 0.5'",  # holds
        "final.epoch: '== 4'",  # holds
        "best.val_loss: '< 0.0001'",  # fails
        "reaches: {val_accuracy: '>= 0.5 by epoch 4'}",  # holds
        "flags: none",  # holds
        "status: completed",  # holds
    ]
    path = write(tmp_path, lines)
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "-q"])
    assert r.exit_code == 1, r.output
    assert "Expectations: 5 of 6 expectations hold" in r.output
    assert "best.val_loss < 0.0001" in r.output and "FAIL" in r.output
    assert "expect: 1 of 6 expectations failed (the run is kept in" in r.output
    assert (out / "model.npz").exists()
    r = CliRunner().invoke(app, ["check", str(out), "--json"])
    assert r.exit_code == 1
    report = strict(r.stdout)
    assert [v["passed"] for v in report["verdicts"]] == [True, True, False, True, True, True]
    assert report["verdicts"][0]["value"] >= 0.5 and report["verdicts"][3]["measured"].startswith("epoch ")
    # the run's own config.yaml holds the resolved expectations: loosen them there and it passes
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["expect"]["best"]["val_loss"] = "< 10"
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    r = CliRunner().invoke(app, ["check", str(out)])
    assert r.exit_code == 0 and "Expectations: 6 of 6 expectations hold" in r.output


def test_a_config_that_expects_to_go_nonfinite_exits_by_its_verdicts(tmp_path):
    base = BASE | {"optimizer": {"name": "sgd", "learning_rate": 1e30}}
    path = write(tmp_path, ["status: nonfinite", "flags: {nonfinite: any}"], base)
    r = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["check", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0 and strict(r.stdout)["status"] == "nonfinite"
    path = write(tmp_path, ["status: finished"], base, name="d.yaml")  # not expected: exit 3 as ever
    r = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run2"), "-q"])
    assert r.exit_code == 3


def test_check_refuses_what_it_cannot_judge(tmp_path):
    r = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert r.exit_code == 2 and "not a run directory" in r.output
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["train", str(write(tmp_path, None)), "--out", str(out), "-q"]).exit_code == 0
    r = CliRunner().invoke(app, ["check", str(out)])
    assert r.exit_code == 2 and "no expect: section" in r.output


def test_flags_by_layer_any_none_and_count(tmp_path):
    deep = BASE | {
        "model": {
            "input_shape": [4],
            "layers": [{"type": "dense", "units": 8, "activation": "sigmoid", "kernel_initializer": "random_normal"}]
            * 6
            + [{"type": "dense", "units": 1, "activation": "sigmoid"}],
        },
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
    }
    lines = [
        "flags: {vanishing: [dense, 1], exploding: none, dead: none}",
    ]
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(write(tmp_path, lines, deep)), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    outcome = Outcome(out)
    on = {f["layer"] for f in outcome.flags if f["flag"] == "vanishing" and not f["transient"]}
    assert {"dense", "dense_1"} <= on
    from dnncli.experiment.expect.check import check_outcome

    verdicts = check_outcome({"flags": {"vanishing": f"== {len(on)}", "saturated": "any"}}, outcome).verdicts
    assert [v.passed for v in verdicts] == [True, False]
    assert check_outcome({"flags": "none"}, outcome).verdicts[0].measured.startswith("vanishing on dense")


# measures on hand-made run directories ----------------------------------------------------------------------------
def fake_run(path: Path, losses, val_losses, times=None, accuracy=None, steps=None) -> Path:
    """A run directory holding only history.csv (and losses.csv): enough for history measures."""
    path.mkdir(parents=True)
    rows = ["epoch,loss,val_loss,accuracy,time"]
    for i, (loss, val) in enumerate(zip(losses, val_losses)):
        acc = accuracy[i] if accuracy else 0.5
        rows.append(f"{i + 1},{loss},{val},{acc},{times[i] if times else 0.01}")
    (path / "history.csv").write_text("\n".join(rows) + "\n")
    rows = ["epoch,step,samples,seconds,loss"]
    rows += [f"1,{i + 1},{32 * (i + 1)},0.0,{v}" for i, v in enumerate(steps or losses)]
    (path / "losses.csv").write_text("\n".join(rows) + "\n")
    return path


def test_history_measures_on_a_known_history(tmp_path):
    steps = [9.0, 9.0, 9.0, 1.0, 0.5, 1.0, 0.5]  # the second half: 1.0, 0.5, 1.0, 0.5, jumps of 0.5 at a level of 0.75
    history = fake_run(
        tmp_path / "r", [1.0, 0.5, 0.25, 0.5], [1.2, 0.9, 0.8, 1.0], [1, 2, 9, 3], [0.1, 0.4, 0.9, 0.7], steps
    )
    run = Outcome(history)
    columns, metrics = ["loss", "accuracy", "val_loss"], ["accuracy"]

    def value(text):
        return measure(parse_measure(text, columns, metrics), run)

    assert value("final.loss") == 0.5 and value("best.loss") == 0.25 and value("best.accuracy") == 0.9
    assert value("gap.loss") == pytest.approx(0.5) and value("final.epoch") == 4
    assert value("epochs_to.accuracy >= 0.9") == 3 and value("epochs_to.loss < 0.1") == float("inf")
    assert value("time.epoch") == 2.5 and value("time.total") == 15  # the median epoch: one slow one aside
    assert value("jitter.loss") == pytest.approx(0.5 / 0.75)
    assert value("flags.vanishing") == 0 and value("weights.zero") is None  # no gradients.csv, no model.npz


# comparisons ------------------------------------------------------------------------------------------------------
PARAMS = {"model.layers.*.rate": {"values": [0.0, 0.5]}, "optimizer.learning_rate": {"values": [0.1]}}


def trials(tmp_path: Path, gaps: dict) -> list:
    """Hand-made trials: for each rate, one run per seed whose final val_loss - loss is the gap given."""
    out = []
    for rate, values in gaps.items():
        for k, gap in enumerate(values):
            run = fake_run(tmp_path / f"r{rate}-{k}", [0.5, 0.2], [0.6, 0.2 + gap])
            out.append(
                SimpleNamespace(params={"model.layers.*.rate": rate, "optimizer.learning_rate": 0.1}, run_dir=run)
            )
    return out


def compare(entries, found):
    comparisons = parse_comparisons(entries, PARAMS, ["loss", "val_loss", "accuracy"], ["accuracy"])
    return judge(comparisons, found)


LOWER = {"measure": "gap.loss", "lower": {"rate": 0.5}, "than": {"rate": 0.0}, "claim": "dropout reduces overfitting"}


@pytest.mark.parametrize(
    ("gaps", "passed", "why"),
    [
        ({0.5: [0.02, 0.03, 0.04], 0.0: [0.20, 0.25, 0.30]}, True, "in that order, and the spreads do not overlap"),
        ({0.5: [0.02, 0.15, 0.28], 0.0: [0.10, 0.25, 0.40]}, False, "the spreads overlap: within the seeds' noise"),
        ({0.5: [0.30, 0.31, 0.32], 0.0: [0.10, 0.11, 0.12]}, False, "it is higher, or equal"),
        ({0.5: [0.02], 0.0: [0.20, 0.25]}, False, "one trial with rate=0.5: its spread over seeds is unknown"),
    ],
)
def test_a_comparison_holds_only_beyond_the_seeds_noise(tmp_path, gaps, passed, why):
    (v,) = compare([LOWER], trials(tmp_path, gaps))
    assert v.passed is passed and why in v.reason
    assert v.sentence == "gap.loss is lower with rate=0.5 than with rate=0"
    assert v.side.n == len(gaps[0.5]) and v.claim == "dropout reduces overfitting"
    strict(json.dumps(v.to_dict()))


def test_higher_same_and_never_reached(tmp_path):
    found = trials(tmp_path, {0.5: [0.10, 0.12, 0.14], 0.0: [0.11, 0.13, 0.15]})
    higher = {"measure": "gap.loss", "higher": {"rate": 0.0}, "than": {"rate": 0.5}}
    same = {"measure": "gap.loss", "same": [{"rate": 0.0}, {"rate": 0.5}]}
    never = {"measure": "epochs_to.loss <= 0.3", "lower": {"rate": 0.5}, "than": {"rate": 0.0}}
    v_higher, v_same, v_never = compare([higher, same, never], found)
    assert not v_higher.passed and "overlap" in v_higher.reason
    assert v_same.passed and "no difference beyond the seeds' noise" in v_same.reason
    assert v_never.side.values == [2.0, 2.0, 2.0] and v_never.passed is False  # both reach it at epoch 2: equal
    apart = trials(tmp_path / "b", {0.5: [0.01, 0.02], 0.0: [0.5, 0.6]})
    assert not compare([same], apart)[0].passed


def test_a_side_that_never_gets_there_is_beyond_any_that_does(tmp_path):
    found = trials(tmp_path, {0.5: [0.1, 0.1], 0.0: [0.1, 0.1]})
    for t in found:
        if t.params["model.layers.*.rate"] == 0.0:  # these never get below 0.3 in their two epochs
            (t.run_dir / "history.csv").write_text("epoch,loss,val_loss\n1,0.9,0.9\n2,0.8,0.8\n")
    (v,) = compare([{"measure": "epochs_to.loss <= 0.3", "lower": {"rate": 0.5}, "than": {"rate": 0.0}}], found)
    assert v.passed and v.other.mean == float("inf")


@pytest.mark.parametrize(
    ("entry", "key", "says"),
    [
        ({"measure": "gap.loss", "lower": {"rat": 0.5}, "than": {"rate": 0.0}}, (0, "lower", "rat"), "Did you mean"),
        ({"measure": "gap.loss", "lower": {"rate": 0.3}, "than": {"rate": 0.0}}, (0, "lower", "rate"), "not one of"),
        ({"measure": "gap.los", "lower": {"rate": 0.5}, "than": {"rate": 0.0}}, (0, "measure"), "Did you mean"),
        ({"measure": "gap.loss", "lower": {"rate": 0.5}, "higher": {"rate": 0.0}}, (0,), "give one of lower"),
        ({"measure": "gap.loss", "lower": {"rate": 0.5}}, (0, "than"), "needs than"),
        ({"measure": "gap.loss", "same": [{"rate": 0.5}]}, (0, "same"), "two sets of parameters"),
        ({"measure": "gap.loss", "lower": {"rate": 0.5}, "than": {"rate": 0.5}}, (0, "than"), "the same trials"),
        ({"measure": "gap.loss", "lower": {"rate": 0.5}, "than": {"rate": 0.0}, "why": 1}, (0, "why"), "no key"),
    ],
)
def test_comparison_errors_carry_their_key(entry, key, says):
    with pytest.raises(DnnError) as info:
        parse_comparisons([entry], PARAMS, ["loss", "val_loss"], [])
    assert info.value.key == key and says in info.value.message


def test_a_sweep_files_expect_errors_name_file_and_line(tmp_path):
    from dnncli.experiment.sweep import read_sweep

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "s.yaml").write_text(
        "config: base.yaml\n"
        "parameters:\n"
        "  optimizer.learning_rate: {values: [0.01, 0.1]}\n"
        "expect:\n"
        "  - measure: final.val_loss\n"
        "    lower: {learning_rate: 0.3}\n"
        "    than: {learning_rate: 0.01}\n"
    )
    with pytest.raises(DnnError) as info:
        read_sweep(tmp_path / "s.yaml")
    assert str(info.value).startswith(f"{tmp_path / 's.yaml'}:6: expect.0.lower.learning_rate: 0.3 is not one of")
    text = (tmp_path / "s.yaml").read_text().replace("0.3}", "0.1}")
    (tmp_path / "s.yaml").write_text(text)
    spec = read_sweep(tmp_path / "s.yaml")
    assert spec.expect[0].sentence() == "final.val_loss is lower with learning_rate=0.1 than with learning_rate=0.01"


def test_measure_names_are_checked(tmp_path):
    for text, says in [("final", "FAMILY.NAME"), ("fnal.loss", "Did you mean 'final'"), ("epochs_to.loss", "bound")]:
        with pytest.raises(DnnError, match=says):
            parse_measure(text, ["loss"], [])
    assert parse_measure("epochs_to.loss<0.5", ["loss"], []) == Measure("epochs_to", "loss", parse_bound("< 0.5", ""))
