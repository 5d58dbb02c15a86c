"""Advice from the network as a whole, --try-advice ranked by outcome, --write-config, and the update ratio."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.diagnostics.advice import InputStats
from dnncli.diagnostics.monitor import GradientMonitor
from dnncli.experiment import cure
from dnncli.experiment.config import load
from dnncli.experiment.inspection import inspect_config
from dnncli.experiment.prepare import build_trainer, prepare_data
from dnncli.nn import optimizers

BLOBS = {"source": "synthetic", "generator": "blobs", "n_samples": 600, "n_features": 10, "classes": 3}


def dense(units, activation, init="he_normal", **more):
    return {"type": "dense", "units": units, "activation": activation, "kernel_initializer": init, **more}


def write(tmp_path, name, layers, data=None, optimizer=None, loss="sparse_categorical_crossentropy", **top):
    spec = {
        "name": name,
        "data": {**BLOBS, "scale": "standardize"} if data is None else data,
        "model": {"input_shape": [10], "layers": layers},
        "loss": loss,
        "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.01},
        "training": {"epochs": 2, "batch_size": 32},
        **top,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def compounding(tmp_path, name="gain"):
    # 1.8x He's standard deviation per layer: never past 2x, but 1.8^12 = 1157 through the stack
    init = {"name": "variance_scaling", "scale": 2 * 1.8**2, "mode": "fan_in", "distribution": "untruncated_normal"}
    return write(tmp_path, name, [dense(64, "relu", init) for _ in range(12)] + [dense(3, "softmax", "glorot_uniform")])


def test_a_gain_under_2x_per_layer_that_compounds_is_the_cause_and_the_rate_is_not(tmp_path):
    report = inspect_config(load(compounding(tmp_path)))
    assert any("exploding" in layer.flags for layer in report.layers)
    first = report.advice[0]
    assert "through a stack of 13 layers" in first["text"] and "1.16e+03-fold" in first["text"]
    assert first["set"] == [
        "model.layers.*.kernel_initializer=he_normal",
        "model.layers.12.kernel_initializer=glorot_uniform",
    ]
    # the rate is sgd's default and the flags came at initialization: no learning-rate item
    assert not any("learning_rate" in s for a in report.advice for s in a["set"])


def test_unscaled_inputs_come_first_when_the_first_layer_shows_them(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (600, 10)) * np.array([3e4, 1e3, 1, 1, 1, 1, 1, 1, 1e-3, 0])
    y = (x[:, 0] / 3e4 + x[:, 1] / 1e3 > 0).astype(int)
    np.savez(tmp_path / "raw.npz", x=x, y=y)
    data = {"source": "npz", "path": str(tmp_path / "raw.npz")}
    path = write(
        tmp_path,
        "raw",
        [dense(32, "sigmoid", "glorot_uniform") for _ in range(3)] + [dense(1, "sigmoid")],
        data=data,
        loss="binary_crossentropy",
        optimizer={"name": "sgd", "learning_rate": 0.1},
    )
    report = inspect_config(load(path))
    assert "saturated" in report.layers[0].flags
    first = report.advice[0]
    assert first["set"] == ["data.scale=standardize"]
    assert "values up to" in first["text"] and "1 constant column" in first["text"]
    stats = InputStats.of(x)
    assert stats.unscaled and stats.constant == 1 and stats.max_abs > 1e4


def test_a_learning_rate_item_only_where_the_rate_is_the_cause(tmp_path):
    good = [dense(32, "relu") for _ in range(4)] + [dense(3, "softmax", "glorot_uniform")]
    high = inspect_config(load(write(tmp_path, "high", good, optimizer={"name": "sgd", "learning_rate": 5.0})))
    assert high.advice[0]["set"] == ["optimizer.learning_rate=0.01"] and "500x sgd's default" in high.advice[0]["text"]
    low = inspect_config(load(write(tmp_path, "low", good, optimizer={"name": "adam", "learning_rate": 1e-7})))
    stalled = {f for layer in low.layers for f in layer.flags}
    assert stalled == {"stalled"}
    assert low.advice[0]["set"] == ["optimizer.learning_rate=0.001"] and "too low" in low.advice[0]["text"]


@pytest.mark.filterwarnings("ignore:.*expects probabilities")
def test_biases_a_mismatched_loss_and_momentum_each_name_their_cause(tmp_path):
    bias = {"name": "constant", "value": -4.0}
    layers = [dense(32, "relu", bias_initializer=bias) for _ in range(3)] + [dense(3, "softmax", "glorot_uniform")]
    report = inspect_config(load(write(tmp_path, "bias", layers, optimizer={"name": "adam"})))
    first = report.advice[0]
    assert (
        "biases start at -4" in first["text"] and len(first["set"]) == 1 and "bias_initializer=zeros" in first["set"][0]
    )
    logits = [dense(32, "relu"), dense(1, "linear")]
    report = inspect_config(
        load(
            write(
                tmp_path,
                "logits",
                logits,
                loss="binary_crossentropy",
                data={**BLOBS, "classes": 2, "scale": "standardize"},
            )
        )
    )
    assert report.advice and report.advice[0]["set"] == ["loss={name: binary_crossentropy, from_logits: true}"]
    momentum = {"name": "sgd", "learning_rate": 0.3, "momentum": 0.99}
    layers = [dense(64, "relu") for _ in range(3)] + [dense(3, "softmax")]
    report = inspect_config(load(write(tmp_path, "momentum", layers, optimizer=momentum)), steps=45)
    assert any(a["set"] == ["optimizer.momentum=0.9"] for a in report.advice)


def test_try_advice_ranks_by_outcome_and_marks_one(tmp_path):
    config = load(compounding(tmp_path))
    report = inspect_config(config)
    tried = cure.try_advice(config, report, report.advice)
    assert [t["rank"] for t in tried] == list(range(1, len(tried) + 1))
    assert sum(t["recommended"] for t in tried) == 1 and tried[0]["recommended"] and tried[0]["cured"]
    assert tried[0]["set"] == report.advice[0]["set"]  # He initialization cures it
    clip = next(t for t in tried if t["set"] == ["optimizer.clipnorm=1.0"])
    assert not clip["cured"] and clip["rank"] > 1


def test_write_config_writes_the_cure_as_a_person_would_and_never_overwrites(tmp_path):
    path = compounding(tmp_path)
    out = tmp_path / "fixed.yaml"
    r = run("inspect-gradients", path, "--write-config", out, "--plain")
    assert r.exit_code == 0, r.output
    text = out.read_text()
    modeline, text = text.split("\n", 1)  # the first line points an editor at the schema (issue 26)
    assert modeline.startswith("# yaml-language-server: $schema=")
    assert (
        text.startswith("# gain")
        and "he_normal" in text
        and "variance_scaling" not in text.split("layers:")[1].split("- {type: dense, units: 3")[0]
    )
    assert "\n    - {type: dense, units: 64, activation: relu, kernel_initializer: he_normal}\n" in text
    assert "Recommended (*): advice 1," in r.output
    trained = run("train", out, "--out", tmp_path / "run", "--epochs", "1", "--quiet")
    assert trained.exit_code == 0 and "No gradient flag raised" in trained.output, trained.output
    before = out.read_text()
    r = run("inspect-gradients", path, "--write-config", out)
    assert r.exit_code == 2 and "exists already" in r.output and out.read_text() == before
    assert run("inspect-gradients", path, "--write-config", out, "--force").exit_code == 0
    r = run("inspect-gradients", path, "--write-config", tmp_path)
    assert r.exit_code == 2 and "exists already" in r.output


def test_try_advice_on_a_run_directory_uses_the_runs_config_and_data(tmp_path):
    layers = [dense(32, "relu", bias_initializer={"name": "constant", "value": -4.0}) for _ in range(3)]
    path = write(tmp_path, "deadrun", layers + [dense(3, "softmax", "glorot_uniform")], optimizer={"name": "adam"})
    out = tmp_path / "run"
    assert run("train", path, "--out", out, "--quiet").exit_code == 0
    r = run("inspect-gradients", out, "--try-advice", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    best = next(t for t in report["tried"] if t["recommended"])
    assert best["cured"] and "bias_initializer=zeros" in " ".join(best["set"])


def test_fail_on_judges_the_end_and_fail_on_any_every_flag(tmp_path):
    import typer

    from dnncli.cli.options import gate

    transient = [{"flag": "vanishing", "active_at_end": False, "transient": True}]
    gate(transient, {"vanishing"}, set())  # cleared: --fail-on passes
    with pytest.raises(typer.Exit) as err:
        gate(transient, set(), {"vanishing"})
    assert err.value.exit_code == 1
    still = [{"flag": "dead", "active_at_end": True, "transient": False}]
    with pytest.raises(typer.Exit):
        gate(still, {"dead"}, set())


@pytest.mark.parametrize("name", sorted(optimizers.REGISTRY.names()))
def test_the_update_ratio_is_the_step_the_optimizer_took(tmp_path, name):
    spec = {"name": name, "clipnorm": 0.5} if name != "adamw" else {"name": name, "weight_decay": 0.1}
    config = load(write(tmp_path, "ratio", [dense(16, "relu"), dense(3, "softmax")], optimizer=spec))
    model, loss = config.build_model(), config.build_loss()
    data = prepare_data(config, model, loss)
    trainer = build_trainer(config, model, loss, len(data.x_train))
    monitor = GradientMonitor(model, {**config["monitor"], "every": 1}, loss)
    before = [model.layers[i].params["kernel"].copy() for i in (0, 1)]
    trainer.fit(data.x_train[:32], data.y_train[:32], 1, callbacks=[monitor], prepared=True)
    rows = monitor.take_records()
    for row, old in zip(rows, before):
        new = model.layers[row["layer_index"]].params["kernel"]
        expected = np.linalg.norm(new.astype(np.float64) - old) / np.linalg.norm(old.astype(np.float64))
        assert row["update_ratio"] == pytest.approx(expected, rel=1e-4)
        assert not math.isclose(row["update_ratio"], row["grad_norm"] / row["weight_norm"], rel_tol=1e-3)


REDTEAM = Path(__file__).resolve().parents[1] / "bench" / "diagnosis" / "redteam"


@pytest.mark.parametrize(
    "name, steps, first",
    [
        ("p02_unscaled_target_regression", None, "data.target_scale=standardize"),
        ("p04_relu_zero_init", None, "kernel_initializer=he_normal"),
        ("p05_tanh_constant_init", None, "kernel_initializer=glorot_uniform"),
        ("p08_clipvalue_tiny", None, "optimizer.clipvalue=null"),
        ("p09_l2_huge", None, "kernel_regularizer={name: l2, l2: 0.0001}"),
        ("p11_sigmoid_bias_plus6", None, "bias_initializer=zeros"),
        ("p12_adadelta_default_lr", None, "optimizer.learning_rate=1"),
        ("p17_lr_schedule_collapse", None, "optimizer.learning_rate=0.001"),
        ("p22_sigmoid_output_regression", None, "model.layers.2.activation=linear"),
        ("p25_bn_stochastic", None, "training.batching=mini-batch"),
        ("p26_adam_epsilon_huge", None, "optimizer.epsilon=1e-07"),
        ("p27_adamw_decay_huge", 100, "optimizer.weight_decay=0.004"),
    ],
)
def test_the_first_advice_names_what_the_red_team_broke(name, steps, first, monkeypatch):
    # each of these once got advice that named another cause, or a "cure" that did not learn (bench/diagnosis)
    monkeypatch.chdir(REDTEAM.parents[2])  # the tables are named from the checkout
    report = inspect_config(load(REDTEAM / f"{name}.yaml"), steps=steps)
    assert report.advice, name
    assert any(first in s for s in report.advice[0]["set"]), report.advice[0]


def test_a_cure_ends_clearly_lower_not_at_chance():
    # 0.6932 -> 0.6931 with the flags gone is a network that still knows nothing: no cure
    base = {"advice": "1", "set": [], "cleared": [{"layer": "dense", "flag": "stalled"}], "remaining": [], "new": []}
    assert not cure.Outcome(**base, loss_before=0.6932, loss_after=0.6931).cured
    assert cure.Outcome(**base, loss_before=0.6932, loss_after=0.60).cured


def test_items_that_can_go_together_are_combined_past_one_that_cannot():
    # batch normalization's new layer list sets what every other item sets: it is passed over, not the combination
    def outcome(label, sets):
        return cure.Outcome(label, sets, cleared=[{"layer": "dense", "flag": "saturated"}])

    zero, bn, relu = (
        outcome("1", ["model.layers.*.bias_initializer=zeros"]),
        outcome("3", ["model.layers=[{type: dense, units: 4}, {type: batch_normalization}]"]),
        outcome("2", ["model.layers.*.activation=relu", "model.layers.0.kernel_initializer=he_normal"]),
    )
    assert [o.advice for o in cure._compatible([zero, bn, relu], 2)] == ["1", "2"]
    assert [o.advice for o in cure._compatible([bn, zero, relu], 2)] == ["1", "2"]  # nothing goes with it: passed
    assert cure._compatible([zero, bn, relu], 3) == [] and cure._compatible([zero, relu], 3) == []
    # a key of every layer and the same key of one layer set one place
    one = outcome("4", ["model.layers.0.kernel_initializer=glorot_uniform"])
    assert cure._compatible([relu, one], 2) == [] and cure._compatible([zero, one], 2) == [zero, one]


def test_flags_cleared_at_the_price_of_a_clearly_higher_loss_do_not_help():
    cleared = [{"layer": "dense", "flag": "saturated"}]
    assert cure.Outcome("1", [], cleared=cleared, loss_before=0.70, loss_after=0.72).helps
    worse = cure.Outcome("1", [], cleared=cleared, loss_before=0.70, loss_after=0.75)
    assert not worse.helps and worse.to_dict()["helps"] is False
    # ranked below an item that helps, though it cleared more: the outcome column reads cure, helps, no
    less = cure.Outcome("2", [], cleared=cleared[:1], loss_before=0.70, loss_after=0.60)
    more = cure.Outcome("1", [], cleared=cleared * 3, loss_before=0.70, loss_after=0.75)
    assert sorted([more, less], key=cure.Outcome.key, reverse=True) == [less, more]


def test_a_sigmoid_stack_biased_to_saturation_is_cured_by_zero_biases_with_relu():
    # the red team's p11: zero biases alone stall the first layer, relu with He alone kills units; together, a cure
    path = Path(__file__).parents[1] / "bench" / "diagnosis" / "redteam" / "p11_sigmoid_bias_plus6.yaml"
    config = load(path)
    report = inspect_config(config)
    tried = cure.try_advice(config, report, report.advice)
    best = cure.recommended(tried)
    assert best["cured"] and best["advice"] == "1+2" and best["rank"] == 1
    assert "model.layers.*.bias_initializer=zeros" in best["set"] and "model.layers.*.activation=relu" in best["set"]
    single = {t["advice"]: t for t in tried}
    assert not single["1"]["cured"] and not single["2"]["cured"]


def test_batch_normalization_advised_for_a_short_run_settles_its_moving_statistics():
    from dnncli.diagnostics.remedies import _settling_momentum

    assert _settling_momentum(None) == (0.99, "") and _settling_momentum(5000) == (0.99, "")
    momentum, why = _settling_momentum(125)
    assert momentum == 0.95 and "would still hold 28% of their initial values after this run's 125 steps" in why
    assert _settling_momentum(25)[0] == 0.8 and _settling_momentum(3)[0] == 0.5


def test_a_short_deep_run_gets_batch_normalization_that_settles(tmp_path):
    # 14 softplus layers at std 0.01: vanishing; 5 epochs of 25 steps, too few for Keras's momentum 0.99
    layers = [dense(16, "softplus", {"name": "random_normal", "stddev": 0.01}) for _ in range(14)]
    data = {"source": "synthetic", "generator": "moons", "n_samples": 1000, "noise": 0.1, "scale": "standardize"}
    path = write(
        tmp_path,
        "soft",
        layers + [dense(1, "sigmoid", "glorot_uniform")],
        data=data,
        optimizer={"name": "adam"},
        loss="binary_crossentropy",
    )
    spec = yaml.safe_load(path.read_text())
    spec["model"]["input_shape"], spec["training"] = [2], {"epochs": 5, "batch_size": 32}
    path.write_text(yaml.safe_dump(spec))
    report = inspect_config(load(path))
    bn = next(a for a in report.advice if "batch normalization" in a["text"])
    assert "with momentum 0.95" in bn["text"] and "{type: batch_normalization, momentum: 0.95}" in bn["set"][0]


def test_a_loss_still_above_an_uninformed_models_is_a_cure_only_halfway_there():
    from dnncli.diagnostics.inspection_report import InspectionReport, LossSpan

    def outcome(before, after, classes=4):
        span = LossSpan(first=None, final=after, final_data=after, uninformed=math.log(classes))
        report = InspectionReport.__new__(InspectionReport)
        object.__setattr__(report, "loss", span)
        cleared = [{"layer": "dense", "flag": "vanishing"}]
        return cure.Outcome(
            "1", [], cleared=cleared, loss_before=before, loss_after=after, report=report, data_before=before
        )

    assert not outcome(4.87, 4.09).cured and outcome(4.87, 4.09).helps  # lower, and still knowing nothing
    assert outcome(0.95, 0.70, 2).cured  # on its way: most of the way to chance within the probe
    assert outcome(2.0, 1.2).cured  # below chance


def test_dropout_that_drops_most_units_is_named_and_tried(tmp_path):
    # the red team's: dropout 0.95 after each of three relu layers; its gradients fade in stretches (vanishing)
    layers = []
    for _ in range(3):
        layers += [dense(16, "relu"), {"type": "dropout", "rate": 0.95}]
    blobs = {**BLOBS, "n_samples": 1500, "classes": 4, "n_features": 6, "cluster_std": 1.5, "scale": "standardize"}
    path = write(tmp_path, "drop", layers + [dense(4, "softmax", "glorot_uniform")], data=blobs)
    spec = yaml.safe_load(path.read_text())
    spec["model"]["input_shape"], spec["optimizer"] = [6], {"name": "adam", "learning_rate": 0.001}
    spec["training"], spec["seed"] = {"epochs": 10, "batch_size": 32}, 0
    path.write_text(yaml.safe_dump(spec))
    config = load(path)
    report = inspect_config(config)
    first = report.advice[0]
    assert first["text"].startswith("dropout rates up to 0.95 (dropout, dropout_1, dropout_2): 95% of the units")
    assert first["set"] == [f"model.layers.{i}.rate=0.2" for i in (1, 3, 5)]
    best = cure.recommended(cure.try_advice(config, report, report.advice))
    assert best["cured"] and best["set"] == first["set"]


def test_a_network_already_fitting_its_batches_is_cured_by_keeping_its_loss_near_0():
    cleared = [{"layer": "dense", "flag": "exploding"}]
    assert cure.Outcome("1", [], cleared=cleared, loss_before=0.0, loss_after=2.4e-4).cured
    assert not cure.Outcome("1", [], cleared=cleared, loss_before=0.0, loss_after=0.05).cured


REDTEAM = Path(__file__).parents[1] / "bench" / "diagnosis" / "redteam"


def test_class_weights_thousands_apart_are_named_first_and_balanced_cures():
    config = load(REDTEAM / "r2_p07_class_weight_extreme.yaml")  # {0: 1, 1: 5000} on balanced moons
    report = inspect_config(config)
    first = report.advice[0]
    assert first["text"].startswith("class_weight from 1 to 5000: the heaviest class's samples count 5,000x")
    assert first["set"] == ["training.class_weight=balanced"]
    best = cure.recommended(cure.try_advice(config, report, report.advice))
    assert best["cured"] and best["set"] == first["set"]


def test_a_stack_of_narrow_relu_layers_gets_leaky_relu_in_every_one():
    config = load(REDTEAM / "r2_p06_narrow_deep_relu_20.yaml")  # 20 relu layers of 4 units
    report = inspect_config(config)
    leaky = next(a for a in report.advice if "leaky_relu" in a["text"])
    assert "dense to dense_19 (20 layers)" in leaky["text"] and "not only those dead now" in leaky["text"]
    assert "model.layers.*.activation=leaky_relu" in leaky["set"]


def test_no_flag_but_no_learning_is_said_with_the_penalty_that_dwarfs_the_data(tmp_path):
    # the red team's: l1 1.0 on every kernel; its gradient is all penalty, of a steady size: no gradient flag
    from dnncli.cli.views.inspection import inspection_text

    l1 = {"kernel_regularizer": {"l1": 1.0}}
    layers = [dense(32, "tanh", "glorot_uniform", **l1), dense(32, "tanh", "glorot_uniform", **l1)]
    data = {
        "source": "synthetic",
        "generator": "circles",
        "n_samples": 1000,
        "noise": 0.08,
        "factor": 0.5,
        "scale": "standardize",
    }
    path = write(
        tmp_path,
        "l1",
        [*layers, dense(1, "sigmoid", "glorot_uniform", **l1)],
        data=data,
        optimizer={"name": "adagrad", "learning_rate": 0.1},
        loss="binary_crossentropy",
    )
    spec = yaml.safe_load(path.read_text())
    spec["model"]["input_shape"], spec["seed"] = [2], 0
    path.write_text(yaml.safe_dump(spec))
    report = inspect_config(load(path))
    assert not [f for layer in report.layers for f in layer.flag_info] and report.loss.knows_nothing
    text = "\n".join(inspection_text(report))
    assert "no lower than an uninformed model's (0.6931): nothing learned yet in these 25 steps." in text
    assert "x the data loss: the kernel_regularizer factors outweigh the data" in text and "dnn doctor" in text
