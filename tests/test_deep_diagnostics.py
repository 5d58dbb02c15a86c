"""Gradient diagnostics on deep networks: readable views, flags over the whole window, advice that is tried."""

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.cli.views.inspection import inspection_table
from dnncli.cli.views.training import TrainingView
from dnncli.experiment.config import load
from dnncli.experiment.inspection import inspect_config
from dnncli.experiment.run import Reporter, TrainingRun
from dnncli.experiment.rundir import read_step_records
from tests.conftest import stopped_and_resumed

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TEACHING = ["vanishing_sigmoid", "exploding_relu", "dead_relu", "healthy_deep", "deep_sigmoid_20"]
# exploding_relu overflows in its second step as shipped; clipped, it trains (and collapses)
TRAINABLE = {"exploding_relu": ["optimizer.clipnorm=1.0"]}
SCI = re.compile(r"-?\d\.\d+e[-+]\d\d|\b0\b")


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def strict(text: str):
    """Parse JSON the way JavaScript, Go and serde do: a bare NaN or Infinity is an error."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def flags_of(report) -> dict[str, set]:
    """Each layer's lasting flags, by name, of an ``InspectionReport``."""
    return {layer.name: set(layer.flags) for layer in report.layers}


def flags_of_json(report: dict) -> dict[str, set]:
    """The same, of ``inspect-gradients --json``."""
    return {layer["name"]: set(layer["flags"]) for layer in report["layers"]}


class Captured(Reporter):
    def __init__(self):
        self.epochs = []

    def train_begin(self, info):
        self.info = info

    def epoch_end(self, row, layers):
        self.epochs.append((row, layers))


def console(width, height):
    return Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None, record=True)


# the live view and the inspect table --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three epochs of each teaching config, with what the reporter was given."""
    out = {}
    for name in TEACHING:
        cfg = load(CONFIGS / f"{name}.yaml", TRAINABLE.get(name, []))
        cap = Captured()
        run_dir = tmp_path_factory.mktemp(name) / "run"
        TrainingRun.create(cfg, out=run_dir, epochs=3, reporter=cap).train()
        out[name] = cap
    return out


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", TEACHING)
def test_live_view_shows_every_number_whole_and_the_newest_epoch(trained, name, size):
    cap = trained[name]
    width, height = size
    c = console(width, height)
    progress = Progress(console=c)
    progress.add_task("", total=10)
    view = TrainingView(cap.info, progress)
    for row, layers in cap.epochs:
        view.add_epoch(row, layers)
    c.print(view)
    text = c.export_text()
    lines = text.splitlines()
    assert len(lines) < height, text
    assert "…" not in text and all(len(line) <= width for line in lines)
    last = cap.epochs[-1][0]["epoch"]
    assert any(line.split() and line.split()[0] == str(last) for line in lines), text  # the newest epoch
    shown = 0
    for s in cap.epochs[-1][1]:
        row = next((line for line in lines if line.split()[:2] == [str(s.index), s.name]), None)
        if row is None:
            continue  # a layer left out at this height (the caption says so)
        shown += 1
        value = float(next(tok for tok in row.split()[2:] if SCI.fullmatch(tok)))  # the first number: |dW|
        assert value == pytest.approx(s.grad_norm, rel=0.01), (row, s.grad_norm)
    layers = len(cap.epochs[-1][1])
    if shown < layers:
        assert f"{shown} of {layers} layers shown" in text
    # a 12-layer network fits 80x24 whole, a 30-layer one 120x40 (deep_sigmoid_20 at 120x40 too)
    if layers <= 12 or height >= 40:
        assert shown == layers, text


def test_a_30_layer_network_fits_120x40(tmp_path):
    spec = yaml.safe_load((CONFIGS / "deep_sigmoid_20.yaml").read_text())
    spec["model"]["layers"] = [{"type": "dense", "units": 8, "activation": "relu"}] * 29 + [spec["model"]["layers"][-1]]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    cap = Captured()
    TrainingRun.create(load(tmp_path / "c.yaml"), out=tmp_path / "run", epochs=2, reporter=cap).train()
    c = console(120, 40)
    progress = Progress(console=c)
    view = TrainingView(cap.info, progress)
    for row, layers in cap.epochs:
        view.add_epoch(row, layers)
    c.print(view)
    text = c.export_text()
    assert "layers shown" not in text and len(text.splitlines()) < 40
    assert all(any(line.split()[:2] == [str(s.index), s.name] for line in text.splitlines()) for s in layers)


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", TEACHING)
def test_inspect_table_shows_whole_numbers_first_and_last_step(name, width):
    report = inspect_config(load(CONFIGS / f"{name}.yaml", TRAINABLE.get(name, [])))
    c = console(width, 40)
    c.print(inspection_table(c, report))
    text = c.export_text()
    assert "…" not in text and all(len(line) <= width for line in text.splitlines()), text
    header = next(line for line in text.splitlines() if line.lstrip().startswith("layer"))
    steps = [int(s) for s in re.findall(r"step (\d+)", header)]
    assert steps[0] == report.steps[0] and steps[-1] == report.steps[-1]
    if len(steps) < len(report.steps):
        assert f"{len(steps)} of {len(report.steps)} recorded steps shown" in text
    for layer in report.layers:
        line = next(ln for ln in text.splitlines() if ln.split()[:2] == [str(layer.index), layer.name])
        cells = SCI.findall(line.split(layer.activation, 1)[1])
        assert len(cells) == len(steps), line
        for step, cell in zip(steps, cells):
            expected = layer.grad_norm[report.steps.index(step)]
            assert float(cell) == pytest.approx(expected, rel=0.01, abs=1e-300), (line, step)


def test_plain_inspect_table_never_truncates_whatever_columns_says(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    r = run("inspect-gradients", CONFIGS / "vanishing_sigmoid.yaml", "--steps", "30")
    assert r.exit_code == 0, r.output
    assert "…" not in r.output and "\x1b[" not in r.output
    assert "12 of 30 recorded steps shown" in r.output and "step 1 " in r.output and "step 30" in r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("0 dense sigmoid"))
    assert len(SCI.findall(line.split("sigmoid", 1)[1])) == 12 and len(line) > 40


def test_inspect_run_says_which_epochs_it_shows(tmp_path):
    out = tmp_path / "run"
    assert run("train", CONFIGS / "quickstart.yaml", "--out", out, "--epochs", "14", "--quiet").exit_code == 0
    r = run("inspect-gradients", out)
    assert r.exit_code == 0, r.output
    n = len(json.loads(run("inspect-gradients", out, "--json").output)["steps"])
    if n > 12:
        assert f"12 of {n} recorded epochs shown (epochs 1," in r.output


# flags ------------------------------------------------------------------------------------------------------------
def test_clipped_explosion_is_flagged_as_a_collapse_on_every_hidden_layer():
    report = inspect_config(load(CONFIGS / "exploding_relu.yaml", ["optimizer.clipnorm=1.0"]))
    f = flags_of(report)
    hidden = [layer.name for layer in report.layers[:-1]]
    assert all("collapsed" in f[name] for name in hidden), f
    assert all("exploding" in f[name] for name in hidden)  # before the collapse: it was exploding
    info = {i.flag: i for i in report.layers[0].flag_info}
    assert info["collapsed"].active_at_end and "gradient 0 from step" in info["collapsed"].detail
    # the early explosion calmed down before the end, and is reported as such
    assert info["exploding"].onset_step == 1 and not info["exploding"].active_at_end
    assert "then cleared" in info["exploding"].detail
    onset = info["collapsed"].onset_step
    zeros = report.layers[0].grad_norm[report.steps.index(onset) :]
    assert all(v == 0 for v in zeros)


def test_dead_is_a_relu_rule_and_an_activation_layer_is_watched_with_its_dense():
    leaky = inspect_config(load(CONFIGS / "dead_relu.yaml", ["model.layers.1.activation=leaky_relu"]))
    assert all("dead" not in s for s in flags_of(leaky).values())
    assert leaky.layers[1].dead_fraction is None  # not measured: leaky_relu passes gradient below zero
    split = inspect_config(
        load(
            CONFIGS / "dead_relu.yaml",
            [
                "model.layers.1.activation=linear",
                "model.layers=[{type: dense, units: 32, activation: relu, kernel_initializer: he_normal},"
                " {type: dense, units: 32, kernel_initializer: he_normal, bias_initializer: {name: constant, value: -3}},"
                " {type: activation, activation: relu}, {type: dense, units: 1, activation: sigmoid}]",
            ],
        )
    )
    layer = split.layers[1]
    assert layer.name == "dense_1" and layer.activation == "relu" and "dead" in layer.flags


def test_output_layer_is_never_flagged_saturated():
    big = "{name: random_normal, stddev: 50.0}"
    overrides = [f"model.layers.*.kernel_initializer={big}", f"model.layers.10.kernel_initializer={big}"]
    report = inspect_config(load(CONFIGS / "vanishing_sigmoid.yaml", overrides))
    f = flags_of(report)
    assert report.layers[10].saturated_fraction > 0.5  # the output saturates too, but that is the loss's
    assert "saturated" not in f["dense_10"] and "saturated" in f["dense_9"]


def test_batch_norm_statistics_overflow_is_caught_and_skip_batch_keeps_them(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    x[7, 0] = 1e20  # its square overflows float32: the batch variance is infinite
    y = (x[:, 1] > 0).astype(int)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = {
        "data": {"source": "npz", "path": str(tmp_path / "d.npz"), "test_split": 0.25},
        "model": {
            "input_shape": [4],
            "layers": [
                {"type": "dense", "units": 8, "activation": "relu"},
                {"type": "batch_normalization"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
        },
        "loss": "sparse_categorical_crossentropy",
        "training": {"epochs": 2, "batch_size": 20, "shuffle": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    cfg = load(tmp_path / "c.yaml")
    from dnncli.experiment.prepare import prepare_data

    model = cfg.build_model()
    data = prepare_data(cfg, model, cfg.build_loss())
    if not (np.abs(data.x_train) > 1e19).any():
        pytest.skip("the sample was split into the test set")
    r = run("train", tmp_path / "c.yaml", "--out", tmp_path / "stop")
    assert r.exit_code == 3 and "batch statistics" in r.output and "layer 1 (batch_normalization)" in r.output
    r = run("train", tmp_path / "c.yaml", "--out", tmp_path / "skip", "--set", "training.on_nonfinite=skip_batch")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "skip" / "model.npz") as m:
        assert np.isfinite(m["layer1.moving_variance"]).all() and np.isfinite(m["layer1.moving_mean"]).all()
    report = json.loads(run("inspect-gradients", tmp_path / "skip", "--json").output)
    detail = " ".join(report["layers"][0]["details"])
    assert "nonfinite" in report["layers"][0]["flags"] and "moving statistics of layer 1" in detail
    assert "skipped" in detail


def test_train_and_inspect_agree(tmp_path):
    for name, extra in [("vanishing_sigmoid", []), ("dead_relu", []), ("exploding_relu", ["optimizer.clipnorm=1.0"])]:
        cfg = load(CONFIGS / f"{name}.yaml", extra)
        inspected = inspect_config(cfg)
        out = tmp_path / name
        result = TrainingRun.create(load(CONFIGS / f"{name}.yaml", extra), out=out, epochs=1).train()
        trained = {(f["layer"], f["flag"]) for f in result.flags}
        assert trained == {(n, f) for n, fs in flags_of(inspected).items() for f in fs}, name
        from_run = json.loads(run("inspect-gradients", out, "--json").output)
        assert flags_of_json(from_run) == flags_of(inspected), name
        onsets = {(f["layer"], f["flag"]): f["onset_step"] for f in result.flags}
        for layer in inspected.layers:
            for info in layer.flag_info:
                assert onsets[(layer.name, info.flag)] == info.onset_step


def test_train_ends_with_a_flag_summary_and_plain_lines_when_flags_change(tmp_path):
    out = tmp_path / "run"
    r = run("train", CONFIGS / "vanishing_sigmoid.yaml", "--epochs", "2", "--out", out)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    epoch_lines = [ln for ln in lines if re.match(r"\s+\d+\s", ln)]
    assert len(epoch_lines) == 2
    raised = [ln for ln in lines if ln.startswith("  flag raised: ")]
    assert raised and all("vanishing" in ln for ln in raised)
    assert "  vanishing in dense to dense_6 (7 layers): from epoch 1, still at the end" in r.output, r.output
    assert f"dnn inspect-gradients {out}" in r.output and "…" not in r.output


# advice -------------------------------------------------------------------------------------------------------------
def test_advice_names_the_negative_bias_and_omits_what_the_config_has():
    report = inspect_config(load(CONFIGS / "dead_relu.yaml"))
    first = report.advice[0]
    assert "biases start at -4" in first["text"] and first["set"] == ["model.layers.1.bias_initializer=zeros"]
    texts = " ".join(a["text"] for a in report.advice)
    assert "He initialization" not in texts and "learning rate" not in texts  # he_normal and 0.001 already
    exploding = inspect_config(load(CONFIGS / "exploding_relu.yaml"))
    sets = [o for a in exploding.advice for o in a["set"]]
    assert "data.scale=standardize" not in sets  # it has data.scale: standardize
    assert "optimizer.learning_rate=0.01" in sets and "model.layers.*.kernel_initializer=he_normal" in sets
    assert any("50x sgd's default" in a["text"] for a in exploding.advice)
    # the layer furthest from He (fan-in 32), and the gain compounded over the stack
    assert any(
        "std 1 " in a["text"] and "He gives 0.25" in a["text"] and "5.79e+05-fold" in a["text"]
        for a in exploding.advice
    )
    clipped = inspect_config(load(CONFIGS / "exploding_relu.yaml", ["optimizer.clipnorm=1.0"]))
    assert all("optimizer.clipnorm=1.0" not in a["set"] for a in clipped.advice)


def test_every_advice_item_applies_as_given():
    for name in ("vanishing_sigmoid", "exploding_relu", "dead_relu", "deep_sigmoid_20"):
        cfg = load(CONFIGS / f"{name}.yaml")
        written = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())["model"]["layers"]
        for item in inspect_config(cfg).advice:
            changed = load(CONFIGS / f"{name}.yaml", item["set"])  # what a user gets by pasting the overrides
            assert changed.resolved != cfg.resolved, item
            if any(o.startswith("model.layers=") for o in item["set"]):
                continue  # a new list of layers
            # only the layers the overrides name change: by index, or by * where the layer has the key
            named = set()
            for o in item["set"]:
                parts = o.split("=", 1)[0].split(".")
                if parts[:2] == ["model", "layers"]:
                    named |= (
                        {i for i, spec in enumerate(written) if parts[3] in spec}
                        if parts[2] == "*"
                        else {int(parts[2])}
                    )
            before, after = cfg.resolved["model"]["layers"], changed.resolved["model"]["layers"]
            assert {i for i, (a, b) in enumerate(zip(before, after)) if a != b} <= named, (name, item["set"])


def test_an_override_of_one_layer_leaves_the_layers_sharing_its_yaml_anchor_alone():
    # the teaching configs share one initializer through &id001; --set of layer 0 must change layer 0 only
    cfg = load(CONFIGS / "vanishing_sigmoid.yaml", ["model.layers.0.kernel_initializer.stddev=0.3"])
    stddevs = [layer["kernel_initializer"].get("stddev") for layer in cfg.resolved["model"]["layers"]]
    assert stddevs == [0.3] + [0.05] * 9 + [None]


def test_try_advice_clears_the_dead_flag_with_the_bias_advice():
    r = run("inspect-gradients", CONFIGS / "dead_relu.yaml", "--try-advice", "--json")
    assert r.exit_code == 0, r.output
    report = strict(r.output)
    bias = next(t for t in report["tried"] if t["set"] == ["model.layers.1.bias_initializer=zeros"])
    assert {"layer": "dense_1", "flag": "dead"} in bias["cleared"] and not bias["remaining"]
    assert bias["loss_after"] < bias["loss_before"]
    text = run("inspect-gradients", CONFIGS / "dead_relu.yaml", "--try-advice").output
    assert "Advice tried" in text and "dead: dense_1" in text


def test_set_wildcards(tmp_path):
    from dnncli.experiment.config import apply_overrides

    spec = yaml.safe_load((CONFIGS / "vanishing_sigmoid.yaml").read_text())
    out = apply_overrides(spec, ["model.layers.*.activation=relu", "model.layers.10.activation=sigmoid"])
    assert [layer["activation"] for layer in out["model"]["layers"]] == ["relu"] * 10 + ["sigmoid"]
    out = apply_overrides(spec, ["model.layers.*.kernel_initializer.stddev=0.3"])
    assert out["model"]["layers"][0]["kernel_initializer"]["stddev"] == 0.3
    assert "kernel_initializer" not in out["model"]["layers"][10]  # layers without the key are left alone
    r = run("validate", CONFIGS / "vanishing_sigmoid.yaml", "--set", "model.layers.*.activtion=relu")
    assert r.exit_code == 2 and "matches nothing" in r.output and "Did you mean 'activation'" in r.output
    r = run("validate", CONFIGS / "vanishing_sigmoid.yaml", "--set", "model.layers.*.units=0")
    assert r.exit_code == 2 and "--set model.layers.0.units" in r.output
    r = run("validate", CONFIGS / "vanishing_sigmoid.yaml", "--set", "model.layers.-1.units=0")
    assert r.exit_code == 2 and "--set model.layers.10.units" in r.output  # the override, not the file
    r = run("validate", CONFIGS / "vanishing_sigmoid.yaml", "--set", "model.layerz.*.activation=relu")
    assert r.exit_code == 2 and "model.layerz does not exist. Did you mean 'layers'" in r.output
    r = run("validate", CONFIGS / "vanishing_sigmoid.yaml", "--set", "model.layers.*.activation.name=relu")
    assert r.exit_code == 2 and "'activation' is 'sigmoid', not a mapping" in r.output


# scripting ----------------------------------------------------------------------------------------------------------
def test_fail_on_exit_codes(tmp_path):
    vanishing = CONFIGS / "vanishing_sigmoid.yaml"
    assert run("inspect-gradients", vanishing, "--steps", "10", "--fail-on", "vanishing").exit_code == 1
    assert run("inspect-gradients", vanishing, "--steps", "10", "--fail-on", "dead,exploding").exit_code == 0
    assert run("inspect-gradients", vanishing, "--steps", "10", "--fail-on", "any").exit_code == 1
    assert run("inspect-gradients", CONFIGS / "healthy_deep.yaml", "--steps", "10", "--fail-on", "any").exit_code == 0
    r = run("inspect-gradients", vanishing, "--fail-on", "vanshing")
    assert r.exit_code == 2 and "Did you mean 'vanishing'" in r.output
    out = tmp_path / "run"
    r = run("train", vanishing, "--epochs", "1", "--out", out, "--fail-on", "vanishing")
    assert r.exit_code == 1 and (out / "model.npz").exists() and "active at the end of the run: vanishing" in r.output


def test_every_json_output_is_strict(tmp_path):
    out = tmp_path / "run"
    assert run("train", CONFIGS / "vanishing_sigmoid.yaml", "--epochs", "1", "--out", out, "--quiet").exit_code == 0
    report = strict(run("inspect-gradients", CONFIGS / "vanishing_sigmoid.yaml", "--steps", "5", "--json").output)
    assert report["layers"][0]["dead_fraction"] is None  # a sigmoid layer has no dead fraction: null, not NaN
    strict(run("inspect-gradients", out, "--json").output)
    ev = strict(run("eval", out, "--json").output)
    assert math.isfinite(ev["loss"])
    strict(run("bench", CONFIGS / "quickstart.yaml", "--steps", "3", "--json").output)
    g = run("gradcheck", CONFIGS / "binary_batchnorm.yaml", "--json")
    assert g.exit_code == 0 and strict(g.output)["passed"] is True
    from dnncli.strict_json import strict as _strict

    assert (
        json.dumps(_strict({"a": float("nan"), "b": [float("inf"), np.float32(1.5)]}))
        == '{"a": null, "b": [null, 1.5]}'
    )


# cost ------------------------------------------------------------------------------------------------------------------
def test_gradients_csv_is_appended_and_its_size_after_each_epoch_is_the_sum_of_the_epochs_rows(tmp_path):
    sizes = []

    class Sizes(Reporter):
        def epoch_end(self, row, layers):
            sizes.append((run_dir / "gradients.csv").stat().st_size)

    run_dir = tmp_path / "run"
    r = TrainingRun.create(load(CONFIGS / "quickstart.yaml"), out=run_dir, epochs=4, reporter=Sizes())
    r.train()
    lines = (run_dir / "gradients.csv").read_text().splitlines(keepends=True)
    header = len(lines[0])
    records = read_step_records(run_dir / "gradients.csv")
    per_epoch = [sum(len(lines[1 + j]) for j, rec in enumerate(records) if rec["epoch"] == e) for e in range(1, 5)]
    assert sizes == [header + sum(per_epoch[: k + 1]) for k in range(4)]
    assert [r["step"] for r in records] == sorted(r["step"] for r in records)


def test_resume_keeps_gradients_csv_and_flags_as_an_uninterrupted_run(tmp_path):

    cfg = CONFIGS / "vanishing_sigmoid.yaml"
    straight = TrainingRun.create(load(cfg), out=tmp_path / "a", epochs=3)
    straight_result = straight.train()

    def half_a_line():  # as a process killed mid-write leaves it
        with open(tmp_path / "b" / "gradients.csv", "a") as f:
            f.write("2,999,0,dense,0.1")

    _, resumed = stopped_and_resumed(load(cfg, ["training.epochs=3"]), tmp_path / "b", 70, half_a_line)
    assert (tmp_path / "a" / "gradients.csv").read_text() == (tmp_path / "b" / "gradients.csv").read_text()
    # each step's batch loss, once, as the straight run had it (the seconds are the clock's)
    import csv as csv_mod

    def losses(run_dir):
        return [(r["step"], r["samples"], r["loss"]) for r in csv_mod.DictReader((run_dir / "losses.csv").open())]

    assert losses(tmp_path / "a") == losses(tmp_path / "b") and len(losses(tmp_path / "a")) == 120
    assert [(f["layer"], f["flag"], f["onset_step"]) for f in straight_result.flags] == [
        (f["layer"], f["flag"], f["onset_step"]) for f in resumed.flags
    ]


def test_resume_is_identical_with_small_batches_sparse_records_and_skipped_batches(tmp_path):
    """Batches under 32 samples (the dead-unit window), records sparser than an epoch, a skipped batch."""

    rng = np.random.default_rng(1)
    x = rng.normal(size=(160, 4)).astype(np.float32)
    x[3, 0] = 1e20  # overflows a batch normalization's statistics: that batch is skipped
    y = (x[:, 1] > 0).astype(int)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = {
        "data": {"source": "npz", "path": str(tmp_path / "d.npz"), "test_path": str(tmp_path / "d.npz")},
        "model": {
            "input_shape": [4],
            "layers": [
                {"type": "dense", "units": 8, "activation": "relu"},
                {"type": "batch_normalization"},
                {
                    "type": "dense",
                    "units": 8,
                    "activation": "relu",
                    "bias_initializer": {"name": "constant", "value": -1},
                },
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
        },
        "loss": "sparse_categorical_crossentropy",
        "training": {"epochs": 5, "batch_size": 10, "on_nonfinite": "skip_batch"},
    }
    for name, extra in (("small", {}), ("sparse", {"monitor": {"every": 23}})):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec | extra))
        straight = TrainingRun.create(load(path), out=tmp_path / f"{name}-a").train()

        _, resumed = stopped_and_resumed(load(path), tmp_path / f"{name}-b", 37)
        a, b = tmp_path / f"{name}-a", tmp_path / f"{name}-b"
        assert (a / "gradients.csv").read_text() == (b / "gradients.csv").read_text(), name

        def history(run_dir):
            rows = list(csv.DictReader((run_dir / "history.csv").open()))
            return [{k: v for k, v in row.items() if k != "time"} for row in rows]

        assert history(a) == history(b), name
        assert [row["skipped_batches"] for row in history(a)] == ["1"] * 5
        assert [(f["layer"], f["flag"], f["onset_step"]) for f in straight.flags] == [
            (f["layer"], f["flag"], f["onset_step"]) for f in resumed.flags
        ]


def test_a_collapse_counts_every_record_from_its_onset_and_a_dip_splits_nothing():
    report = inspect_config(load(CONFIGS / "exploding_relu.yaml", ["optimizer.clipnorm=1.0"]))
    info = {i.flag: i for i in report.layers[0].flag_info}
    zeros = sum(1 for v in report.layers[0].grad_norm if v == 0)
    onset = info["collapsed"].onset_step
    assert info["collapsed"].records == len(report.steps) - report.steps.index(onset) <= zeros
    deep = inspect_config(load(CONFIGS / "deep_sigmoid_20.yaml"))
    assert all(i.episodes == 1 for layer in deep.layers for i in layer.flag_info), deep.layers


def test_a_float32_gradient_norm_past_1e19_is_finite_not_nonfinite():
    from dnncli.nn.model import Sequential
    from dnncli.train.trainer import Trainer

    model = Sequential([{"type": "dense", "units": 1}], [2], seed=0)
    trainer = Trainer(model, "mse", "sgd", batch_size=4, shuffle=False)
    x = np.full((4, 2), 3e9, np.float32)  # the squared norm of dW (about 1e39) overflows a float32 dot product
    y = np.zeros((4, 1), np.float32)
    trainer.fit(x, y, epochs=1)  # used to raise NonFiniteLoss at stage "unknown"
    assert trainer.grad_sq.sum() > 1e38 and np.isfinite(trainer.grad_sq).all()


def test_nonfinite_is_found_in_the_order_of_the_forward_pass(tmp_path):
    from dnncli.nn.model import Sequential
    from dnncli.train.trainer import NonFiniteLoss, Trainer

    first = {"type": "dense", "units": 3, "kernel_initializer": "ones"}  # 3e38 + 3e38: inf
    model = Sequential([first, {"type": "batch_normalization"}, {"type": "dense", "units": 1}], [2])
    trainer = Trainer(model, "mse", "sgd", batch_size=4, shuffle=False)
    x = np.ones((4, 2), np.float32)
    x[0] = 3e38  # the first layer's output overflows; the statistics after it follow from that
    with pytest.raises(NonFiniteLoss) as err, np.errstate(all="ignore"):
        trainer.fit(x, np.zeros((4, 1), np.float32), epochs=1)
    assert (err.value.stage, err.value.layer) == ("forward activation", 0)


def test_wide_tables_keep_every_number_whole_at_80_columns():
    from dnncli.cli.views.inspection import try_advice_rows
    from dnncli.cli.views.results import eval_tables
    from dnncli.cli.views.tables import fitted_table, show

    k = 16
    cm = [[38 if i == j else 1 for j in range(k)] for i in range(k)]
    per_class = [
        {"class": i, "name": f"class_{i}", "precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 53} for i in range(k)
    ]
    report = {
        "run_dir": "r",
        "data": "test split",
        "samples": 848,
        "loss": 0.5,
        "confusion_matrix": cm,
        "per_class": per_class,
    }
    c = console(80, 24)
    show(c, eval_tables(c, report))
    text = c.export_text()
    rows = [ln for ln in text.splitlines() if ln.strip().startswith("class_")]
    assert "…" not in text
    for i in range(k):  # every count of the matrix, whole
        line = next(ln for ln in rows if ln.split()[0] == f"class_{i}" and len(ln.split()) > 6)
        assert [int(v) for v in line.split()[1:]] == cm[i], line
    tried = [
        {
            "advice": 1,
            "set": [],
            "cleared": [{"layer": f"dense_{i}", "flag": "dead"} for i in range(3)],
            "remaining": [{"layer": "dense", "flag": "vanishing"}],
            "new": [],
            "loss_before": 0.6951,
            "loss_after": 12800.5,
            "nonfinite": None,
        }
    ]
    c = console(80, 24)
    cols, rows = try_advice_rows(tried)
    show(c, [fitted_table(c, cols, rows, 80)])
    text = c.export_text()
    assert "0.6951 -> 12800.5" in text.replace("\n", " ") or ("0.6951" in text and "12800.5" in text)
    assert "dense_2" in text and "…" not in text


def test_growth_window_must_exceed_smooth():
    r = run("validate", CONFIGS / "quickstart.yaml", "--set", "monitor.growth_window=5")
    assert r.exit_code == 2 and "growth_window must be larger than monitor.smooth" in r.output
