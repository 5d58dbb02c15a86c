"""The training view as a user sees it: live within an epoch, fitted to 80 columns, exact layer lists, plain lines."""

import io
import math
import re
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.cli.views.inspection import try_advice_rows
from dnncli.cli.views.layers import flag_groups
from dnncli.cli.views.training import LiveReporter, PlainReporter, TrainingView, flag_summary
from dnncli.diagnostics.monitor import LayerSummary
from dnncli.diagnostics.rules import FlagState
from dnncli.experiment.config import load
from dnncli.experiment.run import Reporter, RunResult, TrainingRun
from dnncli.train.trainer import Callback

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NAN = re.compile(r"\bnan\b", re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CLEAN = "No gradient flag raised: every layer's gradients stayed in range."


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def console(width, height):
    return Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None, record=True)


class Interim(Reporter):
    """Every interim summary (``layers_every = 0``: after each batch) and every epoch's end, in order."""

    layers_every = 0.0

    def __init__(self):
        self.events = []

    def train_begin(self, info):
        self.info = info

    def layers_update(self, layers):
        self.events.append(("interim", layers))

    def epoch_end(self, row, layers):
        self.events.append(("epoch", layers))


def drawn(info, layers, width=80, height=24, rows=()) -> str:
    c = console(width, height)
    view = TrainingView(info, Progress(console=c))
    for row in rows:
        view.add_epoch(row, layers)
    view.update_layers(layers)
    c.print(view)
    return c.export_text()


def test_the_panel_moves_within_the_first_epoch_and_the_trend_only_at_its_end(tmp_path):
    cap = Interim()
    TrainingRun.create(load(CONFIGS / "vanishing_sigmoid.yaml"), out=tmp_path / "r", epochs=2, reporter=cap).train()
    kinds = [k for k, _ in cap.events]
    first_end = kinds.index("epoch")
    assert first_end >= 10  # updates all through the first epoch, not a still frame until its end
    during = [layers for k, layers in cap.events[:first_end]]
    assert all(math.isfinite(s.grad_norm) and s.trend == [] for layers in during for s in layers)
    assert "vanishing" in during[0][0].flags  # the flags held so far, from the first batch on
    second = [layers for k, layers in cap.events[first_end + 1 :] if k == "interim"]
    assert second and all(len(s.trend) == 1 for layers in second for s in layers)
    text = drawn(cap.info, during[0])
    assert not NAN.search(text) and "…" not in text, text
    row = next(ln for ln in text.splitlines() if ln.split()[:2] == ["0", "dense"])
    assert "vanishing (e1)" in row or "vanish e1" in row, row
    assert row.split()[4] == "-", row  # no trend before an epoch has ended


def test_before_the_first_record_every_layer_shows_a_dash_not_nan(tmp_path):
    cap = Interim()
    TrainingRun.create(load(CONFIGS / "dead_relu.yaml"), out=tmp_path / "r", epochs=1, reporter=cap).train()
    for width, height in ((80, 24), (120, 40)):
        c = console(width, height)
        c.print(TrainingView(cap.info, Progress(console=c)))
        text = c.export_text()
        assert not NAN.search(text), text
        rows = [ln.split() for ln in text.splitlines() if ln.split()[:1] == ["0"]]
        assert rows and set(rows[0][3:]) <= {"-", "dead"} and "-" in rows[0][3:], text


def test_a_run_that_dies_in_epoch_1_leaves_its_latest_numbers_and_flags_on_screen(tmp_path):
    c = console(80, 24)
    training = TrainingRun.create(load(CONFIGS / "exploding_relu.yaml"), out=tmp_path / "r", reporter=LiveReporter(c))
    assert training.train().status == "nonfinite"
    text = ANSI.sub("", c.file.getvalue())
    frame = text[text.rindex("exploding_relu  ") : text.index("Non-finite values first appeared")]
    assert not NAN.search(text), frame
    row = next(ln for ln in frame.splitlines() if ln.split()[:2] == ["9", "dense_9"])
    assert "nonfin" in row and "expl" in row, frame
    assert re.search(r"\d\.\d\de[-+]\d\d", row), row  # its gradient norm so far


def test_an_interrupt_within_an_epoch_shows_that_epochs_numbers_so_far(tmp_path):
    class StopAt(Callback):
        def on_batch_end(self, trainer, step, logs):
            if step == 25:
                trainer.request_stop()

    cap = Interim()
    cap.layers_every = 3600.0  # only the first batch's and the stop's
    training = TrainingRun.create(load(CONFIGS / "vanishing_sigmoid.yaml"), out=tmp_path / "r", reporter=cap)
    training.callbacks.insert(0, StopAt())
    assert training.train().status == "interrupted"
    (_, first), (_, last) = cap.events
    assert last[0].grad_norm != first[0].grad_norm and "vanishing" in last[0].flags


def summary(name, flags, index, onsets=(1,), active=True):
    states = [FlagState(f, 8 * e, e, 8 * e, e, records=3, active=active) for f, e in zip(flags, onsets)]
    return LayerSummary(index, name, "relu", 3.2e4, 1.5e3, 0.28, math.nan, 40.0, [1e3, 1e4, 3.2e4], list(flags), states)


def test_at_80_columns_the_flags_shorten_before_an_evidence_column_goes():
    info = {"name": "x", "run_dir": "runs/x", "metrics": ["accuracy"], "validation": 320, "watched": []}
    layers = [summary(f"dense_{i}", ["vanishing", "exploding"], i, (8, 8)) for i in range(6)]
    layers.append(summary("dense_6", ["exploding", "dead"], 6, (2, 8)))
    text = drawn(info, layers, 80, 24)
    head = next(ln for ln in text.splitlines() if "|dW|" in ln)
    assert all(h in head for h in ("act", "trend", "|ΔW|/|W|", "dead/sat", "flags")), text  # shortened, all kept
    assert "vanish,expl e8" in text and "expl e2; dead e8" in text and "exploding" not in text, text
    layers.append(summary("dense_7", ["vanishing", "exploding", "dead"], 7, (1, 2, 8)))
    text = drawn(info, layers, 80, 24)
    head = next(ln for ln in text.splitlines() if "|dW|" in ln)
    assert "vanish e1; expl e2; dead e8" in text and "left out to fit 80 columns: act" in text, text
    assert all(h in head for h in ("|dW|", "|ΔW|/|W|", "dead/sat")), text  # the evidence stays
    assert all(len(ln) <= 80 for ln in text.splitlines()) and "…" not in text
    wide = drawn(info, layers, 120, 40)
    assert "vanishing (e8), exploding (e8)" in wide and "left out" not in wide, wide


def test_layer_lists_with_gaps_are_written_exactly():
    order = ["dense"] + [f"dense_{i}" for i in range(1, 13)]
    flagged = [n for n in order[:12] if n != "dense_3"]
    flags = [
        {"index": k, "layer": n, "flag": "vanishing", "onset_epoch": 1, "last_epoch": 4, "active_at_end": True}
        for k, n in enumerate(flagged)
    ]
    result = RunResult(Path("runs/x"), "completed", 4, flags=flags)
    lines = flag_summary(result, order)
    assert "  vanishing in dense to dense_2, dense_4 to dense_11 (11 layers): from epoch 1, still at the end" in lines
    items = [{"layer": n, "flag": "dead"} for n in flagged]
    assert flag_groups(items, order) == "dead: dense to dense_2, dense_4 to dense_11 (11 layers)"
    tried = [{"advice": 1, "cleared": items, "remaining": [], "new": []}]
    tried[0].update(loss_before=0.7, loss_after=0.1, nonfinite=None)
    _, rows = try_advice_rows(tried, order)
    assert rows[0][3] == "dead: dense to dense_2, dense_4 to dense_11 (11 layers)"


def test_a_clean_run_says_so_live_piped_and_quiet(tmp_path):
    for args in ([], ["--quiet"]):
        r = run("train", CONFIGS / "healthy_deep.yaml", "--epochs", "1", "--out", tmp_path / f"p{len(args)}", *args)
        assert r.exit_code == 0, r.output
        lines = r.output.splitlines()
        assert lines.index(CLEAN) + 1 == next(k for k, ln in enumerate(lines) if ln.startswith("Test: ")), r.output
    c = console(120, 40)
    live = LiveReporter(c)
    TrainingRun.create(load(CONFIGS / "healthy_deep.yaml"), out=tmp_path / "live", epochs=1, reporter=live).train()
    text = ANSI.sub("", c.file.getvalue())
    assert f"{CLEAN}\nTest: " in text.replace("\r", ""), text


def test_piped_flag_lines_carry_their_step_and_epoch_in_the_order_they_happened(tmp_path):
    r = run(
        "train", CONFIGS / "exploding_relu.yaml", "--set", "optimizer.clipnorm=1.0", "--epochs", "2", "--out", tmp_path
    )
    assert r.exit_code == 0, r.output
    line = r"^  flag (raised|cleared): (\S+) \(\d+, \w+\) (\w+) at step (\d+) \(epoch (\d+)\)"
    events = re.findall(line, r.output, re.M)
    assert ("raised", "dense", "exploding", "1", "1") in events, r.output
    assert len(events) == len(re.findall(r"^  flag ", r.output, re.M)), r.output  # every one says when
    for epoch in ("1", "2"):
        steps = [int(e[3]) for e in events if e[4] == epoch]
        assert steps == sorted(steps), r.output
    by_flag: dict = {}  # a flag raised again after clearing says its new onset, not its first one
    for kind, layer, flag, step, _ in events:
        by_flag.setdefault((layer, flag), []).append((kind, int(step)))
    for seq in by_flag.values():
        assert [k for k, _ in seq] == ["raised", "cleared"] * (len(seq) // 2) + ["raised"] * (len(seq) % 2), seq
        assert [s for _, s in seq] == sorted(s for _, s in seq), seq
    assert "Flags raised during the run" in r.output and CLEAN not in r.output


def test_a_cleared_flag_says_at_which_step_and_a_second_episode_its_own_onset():
    stream = io.StringIO()
    plain = PlainReporter(stream)
    plain._start({"metrics": [], "validation": 0})
    s = summary("dense_3", ["exploding"], 3, (2,), active=False)
    s.states[0].episodes = 2
    s.raised, s.cleared = ["exploding"], ["exploding"]
    s.raised_at, s.cleared_at = {"exploding": (412, 9)}, {"exploding": (530, 11)}
    plain.epoch_end({"epoch": 11, "loss": 0.5}, [s])
    lines = stream.getvalue().splitlines()
    assert lines[1].startswith("  flag raised: dense_3 (3, relu) exploding at step 412 (epoch 9): "), lines
    assert lines[2] == "  flag cleared: dense_3 (3, relu) exploding at step 530 (epoch 11)", lines


def test_the_monitor_says_when_each_episode_of_a_flag_began_and_ended():
    from dnncli.diagnostics.monitor import GradientMonitor

    class Rules:  # the flag rules' reading side, driven by hand
        def __init__(self):
            self.state, self.held = FlagState("exploding", 3, 1, 3, 1, episodes=1, active=True), {"exploding"}

        def flags(self, index):
            return [self.state] if index == 0 else []

        def epoch_flags(self, index):
            return sorted(self.held) if index == 0 else []

    cfg = load(CONFIGS / "vanishing_sigmoid.yaml")
    monitor = GradientMonitor(cfg.build_model(), cfg["monitor"])
    rules = monitor.tracker = Rules()
    monitor._note_changes(3, 1)
    rules.state.active = False
    monitor._note_changes(32, 1)
    first = monitor.summarize()[0]
    assert (first.raised, first.raised_at, first.cleared_at) == (
        ["exploding"],
        {"exploding": (3, 1)},
        {"exploding": (32, 1)},
    )
    rules.held = set()
    rules.state.active, rules.state.episodes = True, 2
    monitor._note_changes(52, 2)
    rules.held = {"exploding"}
    second = monitor.summarize()[0]
    assert second.raised == ["exploding"] and second.raised_at == {"exploding": (52, 2)} and not second.cleared
