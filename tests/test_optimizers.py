"""Every optimizer, schedule and clipping mode against its update rule written out by hand."""

import math

import numpy as np
import pytest

from dnncli.errors import DnnError
from dnncli.nn import optimizers, schedules

STEPS = 4


def _grads(rng, shape=(3, 2)):
    return [rng.normal(size=shape) for _ in range(STEPS)]


def _run(spec, w0, grads):
    opt = optimizers.get(spec)
    w = w0.copy()
    for g in grads:
        opt.apply([w], [g.copy()])
    return w, opt


def sgd_ref(w, grads, lr, momentum=0.0, nesterov=False):
    m = np.zeros_like(w)
    for g in grads:
        if momentum == 0:
            w = w - lr * g
            continue
        m = momentum * m - lr * g
        w = w + (momentum * m - lr * g if nesterov else m)
    return w


def rmsprop_ref(w, grads, lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    s, a, mom = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        s = rho * s + (1 - rho) * g**2
        denom = s + eps
        if centered:
            a = rho * a + (1 - rho) * g
            denom = s - a**2 + eps
        inc = lr * g / np.sqrt(denom)
        if momentum:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    return w


def adam_ref(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=None):
    m, v, vhat = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        if wd:
            w = w - w * wd * lr
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        if amsgrad:
            vhat = np.maximum(vhat, v)
            w = w - alpha * m / (np.sqrt(vhat) + eps)
        else:
            w = w - alpha * m / (np.sqrt(v) + eps)
    return w


def adagrad_ref(w, grads, lr, init=0.1, eps=1e-7):
    acc = np.full_like(w, init)
    for g in grads:
        acc = acc + g**2
        w = w - lr * g / np.sqrt(acc + eps)
    return w


def adadelta_ref(w, grads, lr, rho=0.95, eps=1e-7):
    eg, edx = np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        eg = rho * eg + (1 - rho) * g**2
        dx = -np.sqrt(edx + eps) / np.sqrt(eg + eps) * g
        edx = rho * edx + (1 - rho) * dx**2
        w = w + lr * dx
    return w


CASES = [
    ("sgd", lambda w, g: sgd_ref(w, g, 0.01)),
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, lambda w, g: sgd_ref(w, g, 0.1, 0.9)),
    (
        {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        lambda w, g: sgd_ref(w, g, 0.1, 0.9, True),
    ),
    ("rmsprop", lambda w, g: rmsprop_ref(w, g, 0.001)),
    (
        {"name": "rmsprop", "centered": True, "momentum": 0.5, "rho": 0.8},
        lambda w, g: rmsprop_ref(w, g, 0.001, 0.8, 0.5, centered=True),
    ),
    ("adam", lambda w, g: adam_ref(w, g, 0.001)),
    (
        {"name": "adam", "learning_rate": 0.05, "amsgrad": True, "beta_1": 0.8},
        lambda w, g: adam_ref(w, g, 0.05, b1=0.8, amsgrad=True),
    ),
    ("adamw", lambda w, g: adam_ref(w, g, 0.001, wd=0.004)),
    ({"name": "adamw", "weight_decay": 0.1, "learning_rate": 0.01}, lambda w, g: adam_ref(w, g, 0.01, wd=0.1)),
    ("adagrad", lambda w, g: adagrad_ref(w, g, 0.001)),
    (
        {"name": "adagrad", "initial_accumulator_value": 0.5, "learning_rate": 0.1},
        lambda w, g: adagrad_ref(w, g, 0.1, 0.5),
    ),
    ("adadelta", lambda w, g: adadelta_ref(w, g, 0.001)),
    ({"name": "adadelta", "learning_rate": 1.0, "rho": 0.9}, lambda w, g: adadelta_ref(w, g, 1.0, 0.9)),
]


@pytest.mark.parametrize("spec,ref", CASES, ids=lambda c: str(c) if not callable(c) else "")
def test_update_rules_match_hand_written(spec, ref, rng):
    w0 = rng.normal(size=(3, 2))
    grads = _grads(rng)
    w, opt = _run(spec, w0, grads)
    np.testing.assert_allclose(w, ref(w0, grads), rtol=1e-12, atol=1e-15)
    assert opt.iterations == STEPS


@pytest.mark.parametrize("spec,ref", CASES[:8], ids=lambda c: str(c) if not callable(c) else "")
def test_float32_stays_float32_and_grads_are_not_consumed(spec, ref, rng):
    w = rng.normal(size=(3, 2)).astype(np.float32)
    g = rng.normal(size=(3, 2)).astype(np.float32)
    g_before = g.copy()
    opt = optimizers.get(spec)
    opt.apply([w], [g])
    assert w.dtype == np.float32 and all(s.dtype == np.float32 for s in opt.slots[0].values())
    np.testing.assert_array_equal(g, g_before)


def test_keras_defaults():
    d = optimizers.REGISTRY.defaults
    assert d("sgd")["learning_rate"] == 0.01 and d("sgd")["momentum"] == 0.0
    assert d("adam")["epsilon"] == 1e-7 and d("adam")["beta_1"] == 0.9 and d("adam")["beta_2"] == 0.999
    assert d("adamw")["weight_decay"] == 0.004
    assert d("rmsprop")["rho"] == 0.9 and d("rmsprop")["epsilon"] == 1e-7
    assert d("adagrad")["initial_accumulator_value"] == 0.1
    assert d("adadelta")["rho"] == 0.95 and d("adadelta")["learning_rate"] == 0.001


def test_flat_vector_update_equals_per_variable_update(rng):
    ws = [rng.normal(size=(4, 3)), rng.normal(size=3)]
    gs = [[rng.normal(size=w.shape) for w in ws] for _ in range(3)]
    flat = np.concatenate([w.ravel() for w in ws])
    a, b = optimizers.get("adam"), optimizers.get("adam")
    ws_copy = [w.copy() for w in ws]
    for g in gs:
        a.apply(ws_copy, [x.copy() for x in g])
        b.apply([flat], [np.concatenate([x.ravel() for x in g])])
    np.testing.assert_allclose(flat, np.concatenate([w.ravel() for w in ws_copy]), rtol=1e-14)


def test_clipnorm_is_per_variable():
    g1, g2 = np.array([3.0, 4.0]), np.array([0.3, 0.4])  # norms 5 and 0.5
    opt = optimizers.get({"name": "sgd", "learning_rate": 1.0, "clipnorm": 1.0})
    w1, w2 = np.zeros(2), np.zeros(2)
    opt.apply([w1, w2], [g1.copy(), g2.copy()])
    np.testing.assert_allclose(w1, -g1 / 5.0)
    np.testing.assert_allclose(w2, -g2)


def test_global_clipnorm_scales_all_together():
    g1, g2 = np.array([3.0, 0.0]), np.array([0.0, 4.0])  # global norm 5
    opt = optimizers.get({"name": "sgd", "learning_rate": 1.0, "global_clipnorm": 2.5})
    w1, w2 = np.zeros(2), np.zeros(2)
    opt.apply([w1, w2], [g1.copy(), g2.copy()])
    np.testing.assert_allclose(w1, -g1 / 2)
    np.testing.assert_allclose(w2, -g2 / 2)
    w = np.zeros(2)
    opt = optimizers.get({"name": "sgd", "learning_rate": 1.0, "global_clipnorm": 2.5})
    opt.apply([w], [np.array([np.inf, 1.0])])
    assert np.isnan(w).all()  # as Keras: a non-finite global norm poisons the step


def test_clipvalue_is_elementwise():
    opt = optimizers.get({"name": "sgd", "learning_rate": 1.0, "clipvalue": 0.5})
    w = np.zeros(3)
    opt.apply([w], [np.array([-2.0, 0.1, 7.0])])
    np.testing.assert_allclose(w, [0.5, -0.1, -0.5])


def test_clipping_happens_before_the_adam_update(rng):
    g = np.array([30.0, 40.0])
    w, _ = _run({"name": "adam", "clipnorm": 1.0}, np.zeros(2), [g] * 2)
    np.testing.assert_allclose(w, adam_ref(np.zeros(2), [g / 50.0] * 2, 0.001), rtol=1e-12)


def test_more_than_one_clipping_mode_is_an_error():
    with pytest.raises(DnnError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        optimizers.get({"name": "adam", "clipnorm": 1.0, "clipvalue": 0.5})


def test_optimizer_errors():
    with pytest.raises(DnnError, match="Did you mean 'learning_rate'") as e:
        optimizers.get({"name": "adam", "learning_rte": 0.1})
    assert e.value.key == ("learning_rte",)
    with pytest.raises(DnnError, match="Did you mean 'rmsprop'"):
        optimizers.get("rmsprp")
    with pytest.raises(DnnError, match=r"sgd.momentum must be a finite number in \[0.0, 1.0\]. Received: 1.5"):
        optimizers.get({"name": "sgd", "momentum": 1.5})
    with pytest.raises(DnnError, match=r"clipnorm must be a finite number > 0.0. Received: 0"):
        optimizers.get({"name": "sgd", "clipnorm": 0})


STATEFUL = [
    "sgd",
    {"name": "sgd", "momentum": 0.9},
    {"name": "sgd", "momentum": 0.9, "nesterov": True},
    "rmsprop",
    {"name": "rmsprop", "momentum": 0.5, "centered": True},
    "adam",
    {"name": "adam", "amsgrad": True},
    "adamw",
    "adagrad",
    "adadelta",
]


@pytest.mark.parametrize("spec", STATEFUL, ids=lambda s: s if isinstance(s, str) else "-".join(map(str, s.values())))
def test_state_round_trip_for_every_optimizer(spec, rng):
    # stopped after 3 steps, its state saved into a fresh optimizer, 3 more: bit-identical to 6 straight
    w0 = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(6)]
    straight = w0.copy()
    opt = optimizers.get(spec)
    for g in grads:
        opt.apply([straight], [g.copy()])
    opt = optimizers.get(spec)
    w = w0.copy()
    for g in grads[:3]:
        opt.apply([w], [g.copy()])
    state = opt.get_state()
    fresh = optimizers.get(spec)
    fresh.set_state({k: v.copy() for k, v in state.items()}, [w])
    for g in grads[3:]:
        fresh.apply([w], [g.copy()])
    np.testing.assert_array_equal(w, straight)
    assert fresh.iterations == opt.iterations + 3


# schedules ------------------------------------------------------------------
def test_exponential_decay():
    s = schedules.get({"name": "exponential_decay", "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5})
    assert s(0) == 0.1 and s(10) == pytest.approx(0.05) and s(5) == pytest.approx(0.1 * 0.5**0.5)
    st = schedules.get(
        {
            "name": "exponential_decay",
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "decay_rate": 0.5,
            "staircase": True,
        }
    )
    assert st(9) == 0.1 and st(10) == pytest.approx(0.05)


def test_piecewise_constant_boundaries_are_inclusive_above():
    s = schedules.get({"name": "piecewise_constant_decay", "boundaries": [2, 5], "values": [1.0, 0.5, 0.1]})
    assert [s(i) for i in range(8)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1]
    with pytest.raises(DnnError, match="one longer than boundaries"):
        schedules.get({"name": "piecewise_constant_decay", "boundaries": [2], "values": [1.0]})


def test_cosine_decay_with_and_without_warmup():
    s = schedules.get({"name": "cosine_decay", "initial_learning_rate": 1.0, "decay_steps": 10, "alpha": 0.1})
    assert s(0) == 1.0 and s(10) == pytest.approx(0.1) and s(20) == pytest.approx(0.1)
    assert s(5) == pytest.approx(0.9 * 0.5 * (1 + math.cos(math.pi / 2)) + 0.1)
    w = schedules.get(
        {
            "name": "cosine_decay",
            "initial_learning_rate": 0.0,
            "decay_steps": 10,
            "warmup_target": 1.0,
            "warmup_steps": 4,
        }
    )
    assert w(0) == 0.0 and w(2) == pytest.approx(0.5) and w(4) == pytest.approx(1.0) and w(14) == pytest.approx(0.0)


def test_schedule_drives_the_optimizer_from_step_zero():
    spec = {
        "name": "sgd",
        "learning_rate": {"name": "piecewise_constant_decay", "boundaries": [0], "values": [1.0, 0.1]},
    }
    opt = optimizers.get(spec)
    w = np.zeros(1)
    opt.apply([w], [np.ones(1)])  # step 0 -> 1.0
    opt.apply([w], [np.ones(1)])  # step 1 -> 0.1
    np.testing.assert_allclose(w, [-1.1])
    with pytest.raises(DnnError, match="follows a schedule"):
        opt.learning_rate = 0.5
