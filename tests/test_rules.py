"""The flag rules on records made by hand: like with like, one verdict per record, transient flags, the loss."""

import math

import numpy as np
import pytest

from dnncli.diagnostics.monitor import resolve_monitor
from dnncli.diagnostics.rules import FlagTracker, WatchedLayer, layer_span
from dnncli.nn import losses

CFG = resolve_monitor(None)
LAYERS = [WatchedLayer(0, "dense", "relu"), WatchedLayer(1, "dense_1", "relu"), WatchedLayer(2, "out", "softmax", True)]


def feed(tracker, norms, losses_=None, **extra):
    """One record per step: ``norms[k]`` the gradient norms of the layers at step k+1."""
    for k, row in enumerate(norms):
        rows = [
            {"step": k + 1, "epoch": 1, "layer_index": w.index, "grad_norm": float(g), "weight_norm": 1.0, **extra}
            for w, g in zip(tracker.layers, row)
        ]
        tracker.update(rows, None if losses_ is None else float(losses_[k]))
    return tracker


def active(tracker, index):
    return {f.name for f in tracker.flags(index) if f.active}


def raised(tracker, index):
    return {f.name for f in tracker.flags(index)}


def test_late_training_noise_never_reads_as_an_explosion():
    # a healthy layer late in training: per-batch norms swing 50x (0.07 to 3.9) around a steady level, the loss falls
    rng = np.random.default_rng(0)
    n = 2000
    first = np.exp(rng.normal(np.log(0.5), 1.0, n))
    norms = np.stack([first, first * 0.8, np.full(n, 0.3)], axis=1)
    loss = np.linspace(0.7, 0.05, n) * np.exp(rng.normal(0, 0.3, n))
    tracker = feed(FlagTracker(LAYERS, CFG, math.log(3)), norms, loss)
    assert raised(tracker, 0) == set() and raised(tracker, 1) == set()


def test_a_sustained_growth_while_the_loss_rises_is_an_explosion():
    n = 60
    growth = np.concatenate([np.full(30, 0.05), 0.05 * 1.25 ** np.arange(1, 31)])  # past 10x and 1.0
    norms = np.stack([growth, growth, np.full(n, 0.3)], axis=1)
    loss = np.concatenate([np.full(30, 0.69), np.linspace(0.7, 3.0, 30)])
    tracker = feed(FlagTracker(LAYERS, CFG, math.log(3)), norms, loss)
    state = next(f for f in tracker.flags(0) if f.name == "exploding")
    assert state.active and "grew" in state.detail and "while the loss did not fall" in state.detail
    # the same growth while the loss falls steadily is a network leaving a plateau: no explosion
    falling = feed(FlagTracker(LAYERS, CFG, math.log(3)), norms, np.linspace(0.69, 0.05, n))
    assert "exploding" not in raised(falling, 0)


def random_runs(seed: int, spread: float, runs: int, each_record=lambda tracker: None):
    """Trackers fed 40 records of log-normal gradient norms (``spread``: the std of their log); ``each_record``
    called after each record."""
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        tracker = FlagTracker(LAYERS, CFG, math.log(3))
        for k, row in enumerate(np.exp(rng.normal(0, spread, (40, 3)))):
            tracker.update(
                [{"step": k + 1, "epoch": 1, "layer_index": i, "grad_norm": float(g)} for i, g in enumerate(row)], 1.0
            )
            each_record(tracker)
        yield tracker


def test_one_verdict_on_the_size_per_layer_and_record():
    # a first layer far below the last (vanishing by ratio) and, at once, past exploding_norm: exploding alone
    seen = []

    def check(tracker):
        for w in LAYERS:
            now = active(tracker, w.index)
            seen.extend(now)
            assert not {"vanishing", "exploding"} <= now and not {"collapsed", "exploding"} <= now, now

    for _ in random_runs(1, 6, 20, check):
        pass
    assert seen


def test_the_spans_of_two_size_verdicts_never_overlap_in_the_report():
    # exploding held by the median while the raw norm already fell: vanishing's onset is not backdated into it
    spans = 0
    for tracker in random_runs(2, 9, 30):
        for w in LAYERS:
            size = [f for f in tracker.flags(w.index) if f.name in ("vanishing", "exploding", "collapsed")]
            for a in size:
                for b in size:
                    if a is not b and a.episodes == b.episodes == 1:
                        spans += 1
                        assert a.last_step < b.onset_step or b.last_step < a.onset_step, (a, b)
    assert spans > 0
    # the red team's case: two records past the norm, then far below the floor
    tracker = feed(
        FlagTracker(LAYERS, CFG, math.log(3)), [[2e3, 2e3, 1.0], [1e-7, 1e-7, 1.0]] + [[1e-8, 1e-8, 1.0]] * 6
    )
    flags = {f.name: f for f in tracker.flags(0)}
    assert flags["exploding"].last_step < flags["vanishing"].onset_step


def test_a_flag_at_initialization_that_clears_is_transient():
    norms = [[1e-9, 1e-9, 0.3]] * 3 + [[0.2, 0.2, 0.3]] * 30
    tracker = feed(FlagTracker(LAYERS, CFG, math.log(3)), norms, [1.0] * 33)
    (state,) = [f for f in tracker.flags(0) if f.name == "vanishing"]
    assert state.transient and not state.active and "transient" in state.describe("step", tracker.total)
    # a flag that holds to the end, or begins later, is not
    late = [[0.2, 0.2, 0.3]] * 10 + [[1e-9, 1e-9, 0.3]] * 10
    tracker = feed(FlagTracker(LAYERS, CFG, math.log(3)), late, [1.0] * 20)
    assert not any(f.transient for f in tracker.flags(0))


@pytest.mark.parametrize(
    "kind, key, activation", [("dead", "dead_fraction", "relu"), ("saturated", "saturated_fraction", "tanh")]
)
def test_idle_units_matter_only_while_the_network_has_not_learned(kind, key, activation):
    layers = [WatchedLayer(0, "dense", activation), WatchedLayer(1, "out", "softmax", True)]
    norms = [[0.2, 0.3]] * 40
    stuck = feed(FlagTracker(layers, CFG, math.log(3)), norms, [1.1] * 40, **{key: 0.7})
    assert kind in active(stuck, 0)
    # the same share of idle units in a network whose loss is a fifth of an uninformed model's: spare capacity
    learned = feed(FlagTracker(layers, CFG, math.log(3)), norms, [0.2] * 40, **{key: 0.7})
    assert kind not in raised(learned, 0)
    # while the loss clearly falls below chance with most units working, they hold nothing back either
    falling = feed(FlagTracker(layers, CFG, math.log(3)), norms * 3, np.linspace(1.0, 0.6, 120), **{key: 0.7})
    assert kind not in active(falling, 0)
    # ...unless nearly all are idle
    most = feed(FlagTracker(layers, CFG, math.log(3)), norms * 3, np.linspace(1.0, 0.6, 120), **{key: 0.95})
    assert kind in active(most, 0)


def test_stalled_needs_healthy_gradients_tiny_steps_and_no_learning():
    norms = [[0.2, 0.2, 0.3]] * 10
    tracker = feed(FlagTracker(LAYERS, CFG, math.log(3)), norms, [1.09] * 10, update_ratio=1e-7)
    assert "stalled" in active(tracker, 0)
    usual = feed(FlagTracker(LAYERS, CFG, math.log(3)), norms, [1.09] * 10, update_ratio=1e-3)
    assert "stalled" not in raised(usual, 0)
    # tiny steps in a vanishing network are the vanishing gradient's, not the rate's
    vanishing = feed(FlagTracker(LAYERS, CFG, math.log(3)), [[1e-9, 1e-9, 0.3]] * 10, [1.09] * 10, update_ratio=1e-9)
    assert all("stalled" not in raised(vanishing, i) for i in (0, 1))


def test_the_uninformed_loss_of_each_loss():
    assert losses.get("sparse_categorical_crossentropy").uninformed(10) == pytest.approx(math.log(10))
    assert losses.get("categorical_crossentropy").uninformed(3) == pytest.approx(math.log(3))
    assert losses.get("binary_crossentropy").uninformed(4) == pytest.approx(math.log(2))
    assert losses.get("mse").uninformed(1) is None


def test_layer_lists_say_their_gaps():
    order = ["dense"] + [f"dense_{i}" for i in range(1, 12)]
    assert layer_span(order[:3] + order[4:], order) == "dense to dense_2, dense_4 to dense_11 (11 layers)"
    assert layer_span(["dense_1", "dense_3"], order) == "dense_1, dense_3"
    assert layer_span(order, order) == "dense to dense_11 (12 layers)"
