"""``dnn doctor``: the checks a good practitioner runs before training, run on a config, with verdicts and fixes.

Each check builds the network from the config's initial weights (as ``dnn train`` would) and runs what it needs
in memory: the data's statistics, the loss before any step, a few hundred steps on one batch, the same steps
with every input zeroed, the first epoch under the gradient monitor (``inspect-gradients``), the gradient noise
scale at the initial weights, the learning-rate range test and central differences. Nothing is written but, on
request, the config with every fix applied (``doctor_report.py``). The verdicts are ``diagnostics/checkup.py``'s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from dnncli.diagnostics import checkup, noise
from dnncli.diagnostics.advice import TargetStats
from dnncli.diagnostics.checkup import FAIL, OK, WARN, Check, OutputStart
from dnncli.errors import DnnError
from dnncli.experiment.doctor_report import DoctorReport, merged
from dnncli.experiment.prepare import PreparedData, build_trainer, prepare_data
from dnncli.train.callbacks import StopAfter
from dnncli.train.threads import ThreadPolicy
from dnncli.train.trainer import Interrupted, NonFiniteLoss, Trainer

GROUPS = (
    "inputs",
    "initial loss",
    "overfit",
    "inputs zeroed",
    "first steps",
    "noise scale",
    "learning rate",
    "gradient check",
)
ONE_BATCH = 32  # samples in the batch to overfit (fewer when the config's batches are smaller)
OVERFIT_STEPS = 200
BASELINE_STEPS = 400  # steps of each arm of the zeroed-input baseline, at most ...
BASELINE_SAMPLES = 100_000  # ... and samples (a batch of 4096 takes 24 steps), but 50 steps at the least
HELD_OUT = 2000  # held-out samples the zeroed-input baseline and the rate probe are scored on, at most
LOWER = 0.95  # a rate fix is kept where its probe ends with a held-out loss this fraction of the config's, or less
START_SAMPLES = 1024  # samples the initial loss is taken over, at most
NOISE_SAMPLES = 4096  # samples the noise scale at the start is measured over, at the least (all, if fewer)


def doctor(config, only: tuple[str, ...] | None = None) -> DoctorReport:
    """Run the checks (the groups of ``GROUPS`` named in ``only``, or all) on ``config``.

    Parameters
    ----------
    config : dnncli.experiment.config.Config
        The config, overrides applied.
    only : tuple of str, optional
        Groups of ``GROUPS`` to run; None runs every one.

    Returns
    -------
    DoctorReport
        The checks in ``GROUPS`` order.
    """
    unknown = [g for g in only or () if g not in GROUPS]
    if unknown:
        raise DnnError(f"unknown doctor check {unknown[0]!r}; the checks: {', '.join(GROUPS)}")
    start = time.perf_counter()
    model, loss = config.build_model(), config.build_loss()
    with np.errstate(all="ignore"):
        data = prepare_data(config, model, loss)
    runs: list[tuple[str, Callable[[], list[Check]]]] = [
        ("inputs", lambda: _inputs(config, model, loss, data)),
        ("initial loss", lambda: [_initial_loss(config, loss, data)]),
        ("overfit", lambda: [_overfit(config, loss, data)]),
        ("inputs zeroed", lambda: [_baseline(config, loss, data, checks)]),
        ("first steps", lambda: _first_steps(config)),
        ("noise scale", lambda: [_noise_scale(config, loss, data, checks)]),
        ("learning rate", lambda: [_learning_rate(config, loss, data, checks)]),
        ("gradient check", lambda: [_gradient_check(config, data, checks)]),
    ]
    checks: list[Check] = []
    for group, run in runs:
        if only is not None and group not in only:
            continue
        began = time.perf_counter()
        with np.errstate(all="ignore"):
            found = run()
        for c in found:
            c.seconds = time.perf_counter() - began
        checks += found
    source = str(config.path) if config.path is not None else config.name
    return DoctorReport(config.name, source, checks, time.perf_counter() - start)


# the data --------------------------------------------------------------------------------------
def _inputs(config, model, loss, data: PreparedData) -> list[Check]:
    image = len(model.input_shape) > 1
    scale = config["data"].get("scale", "none")
    encoder = data.preparation.encoder
    names = encoder.feature_names() if encoder is not None else None
    drop = config["data"].get("drop") or []
    checks = [
        checkup.input_scale(data.x_train, str(scale), image),
        checkup.constant_inputs(data.x_train, image, names, drop),
    ]
    classes = loss.target_classes(data.y_train) if loss.classifies else None
    if classes is not None and len(classes):
        weighted = config["training"].get("class_weight") is not None
        n_out = int(np.prod(model.output_shape))
        checks.append(checkup.class_balance(classes, n_out, weighted, data.preparation.class_names))
    checks.append(checkup.leakage(data.x_train, {"test": data.x_test, "validation": data.x_val}))
    return checks


def _sample(config, n: int, k: int) -> np.ndarray:
    """``k`` of ``n`` indices, drawn with the config's seed (a table's rows may come sorted by class)."""
    return np.sort(np.random.default_rng(config["seed"]).choice(n, min(k, n), replace=False))


def _constant_loss(loss, y: np.ndarray) -> float:
    """The loss of predicting the targets' mean for every sample: a regression's network that knows nothing."""
    guess = np.broadcast_to(y.mean(axis=0, dtype=np.float64).astype(y.dtype), y.shape)
    return float(loss.forward(y, np.array(guess)))


# the network at its start ------------------------------------------------------------------------
def _initial_loss(config, loss, data: PreparedData) -> Check:
    model = config.build_model()
    pick = _sample(config, len(data.x_train), START_SAMPLES)
    x, y = data.x_train[pick], data.y_train[pick]
    measured = model.loss_value(x, y, loss, training=True)  # as the first step sees it: dropout on, batch statistics
    n_out = int(np.prod(model.output_shape))
    expected = loss.uninformed(n_out) if loss.classifies else _constant_loss(loss, y)
    position = max(k for k, layer in enumerate(model.layers) if "kernel" in layer.params)
    layer = model.layers[position]
    X, W = layer.X.astype(np.float64), layer.params["kernel"].astype(np.float64)
    fan_in, fan_out = W.shape
    bias = layer.params.get("bias")
    stats = TargetStats.of(y) if not loss.classifies else None
    # a regression's targets (as trained on) far from mean 0 and unit scale: predicting 0 costs their mean
    # squared on top of their variance, and standardizing them is the fix
    targets_off = stats is not None and config["data"].get("target_scale", "none") != "standardize"
    targets_off = targets_off and (stats.unscaled or float(np.mean(y)) ** 2 > 2 * float(np.var(y)))
    scale = str(config["data"].get("scale", "none"))
    raw_inputs = scale == "none" and checkup.input_scale(data.x_train, scale, len(model.input_shape) > 1).fix != []
    out = OutputStart(
        position,
        layer.name,
        float(np.abs(bias).max()) if bias is not None else 0.0,
        float((X @ W).std()),
        float(W.std() / math.sqrt(2.0 / (fan_in + fan_out))),
        float(np.sqrt(np.mean(X * X))),
        targets_off,
        raw_inputs,
    )
    if expected is None:  # one softmax unit: every guess is right
        return Check("initial loss", OK, measured, None, "~", "one output class: nothing to expect")
    return checkup.initial_loss(measured, expected, loss.classifies, out)


def _trainer(config, model, loss, batch: int) -> Trainer:
    """The config's optimizer and batch size, without augmentation or class weights (these checks fit a fixed
    set of samples)."""
    trainer = Trainer(model, loss, config.build_optimizer(), batch, shuffle=True, seed=config["seed"])
    trainer.on_nonfinite = "stop"
    trainer.threads = ThreadPolicy(config["training"]["threads"])
    return trainer


def _fit(trainer: Trainer, x, y, steps: int) -> bool:
    """Train ``steps`` steps; False where the loss went non-finite."""
    per_epoch = math.ceil(len(x) / trainer.batch_size)
    try:
        trainer.fit(x, y, epochs=math.ceil(steps / per_epoch), callbacks=[StopAfter(steps)], prepared=True)
    except Interrupted:
        pass
    except NonFiniteLoss:
        return False
    return True


def _overfit(config, loss, data: PreparedData) -> Check:
    """A few hundred steps on one batch, dropout off (as Karpathy's recipe has it: nothing that keeps the network
    from memorizing), judged in training mode (batch normalization on the batch's own statistics, as trained)."""
    dropout = [k for k, spec in enumerate(config["model"]["layers"]) if spec["type"] == "dropout"]
    model = config.with_overrides([f"model.layers.{k}.rate=0" for k in dropout]).build_model() if dropout else None
    model = model or config.build_model()
    n = len(data.x_train)
    batch = max(1, min(config.batch_size(n), ONE_BATCH))
    pick = _sample(config, n, batch)
    x, y = data.x_train[pick], data.y_train[pick]
    finite = _fit(_trainer(config, model, loss, batch), x, y, OVERFIT_STEPS)
    accuracy, ratio = None, math.inf
    if finite:
        out = model.forward(x, training=True)
        final = model.loss_value(x, y, loss, training=True)
        if loss.classifies:
            predicted = loss.predicted_classes(loss.probabilities(out))
            truth = loss.target_classes(y)
            if predicted is not None and truth is not None:
                accuracy = float((predicted == truth).mean())
        constant = _constant_loss(loss, y) if not loss.classifies else loss.uninformed(int(np.prod(model.output_shape)))
        ratio = final / constant if constant else math.inf
    elif loss.classifies:
        accuracy = 0.0
    return checkup.overfit_one_batch(OVERFIT_STEPS, len(x), accuracy, ratio, _narrowest(model))


def _narrowest(model) -> tuple[int, str, int] | None:
    """(position, name, units) of the narrowest hidden dense layer, where it is a bottleneck for the output."""
    dense = [(k, layer) for k, layer in enumerate(model.layers) if "kernel" in layer.params]
    hidden = [(k, layer.name, layer.units) for k, layer in dense[:-1]]
    if not hidden:
        return None
    k, name, units = min(hidden, key=lambda h: h[2])
    n_out = int(np.prod(model.output_shape))
    return (k, name, units) if units < max(checkup.NARROW, n_out) else None


def _baseline(config, loss, data: PreparedData, before: list[Check]) -> Check:
    """The same steps with the inputs and with every input zeroed, scored on held-out samples at the end."""
    x, y, x_held, y_held = _held_out(data)
    steps = _probe_steps(config, len(x))
    scores = [
        _probe(config, loss, inputs, y, held, y_held, steps)
        for inputs, held in ((x, x_held), (np.zeros_like(x), np.zeros_like(x_held)))
    ]
    fits = all(c.verdict != FAIL for c in before if c.name == "overfit one batch")
    return checkup.uses_inputs(steps, *scores, fits_one_batch=fits)


def _held_out(data: PreparedData):
    """(x, y, x_held, y_held): the validation split held out, or a fifth of the training split where none is."""
    x, y = data.x_train, data.y_train
    if data.x_val is not None and len(data.x_val):
        return x, y, data.x_val[:HELD_OUT], data.y_val[:HELD_OUT]
    cut = len(x) - max(1, len(x) // 5)
    return x[:cut], y[:cut], x[cut:][:HELD_OUT], y[cut:][:HELD_OUT]


def _probe_steps(config, n: int) -> int:
    return min(BASELINE_STEPS, max(50, BASELINE_SAMPLES // config.batch_size(n)))


def _probe(config, loss, x, y, x_held, y_held, steps: int) -> float:
    """The held-out loss after ``steps`` steps from the initial weights, as dnn train takes them; inf where the
    loss went non-finite."""
    model = config.build_model()
    trainer = build_trainer(config, model, loss, len(x))  # dnn train's batches and augmentation
    trainer.on_nonfinite = "stop"
    finite = _fit(trainer, x, y, steps)
    score = model.loss_value(x_held, y_held, loss) if finite else math.inf
    return score if math.isfinite(score) else math.inf


# the first epoch, the rate and the backward pass --------------------------------------------------------
def _first_steps(config) -> list[Check]:
    """``inspect-gradients`` over the first epoch: its flags and advice, and the update ratios."""
    from dnncli.experiment.inspection import inspect_config

    report = inspect_config(config)
    return [
        checkup.gradient_flow(report),
        checkup.update_ratio([(layer.name, layer.update_ratio) for layer in report.layers]),
    ]


def _noise_scale(config, loss, data: PreparedData, before: list[Check]) -> Check:
    """B_simple at the initial weights, over ``NOISE_SAMPLES`` training samples (more for large batches) in
    batches of the config's size (32 at the least): its estimates are unbiased at any batch size, so the verdict,
    and the batch its fix gives, do not depend on the batch the config has (as the noise scale of a first epoch
    would: it grows as the loss falls, and a small batch takes more steps of an epoch than a large one)."""
    model = config.build_model()
    n = len(data.x_train)
    batch = config.batch_size(n)
    size = min(max(batch, 32), n)
    pick = _sample(config, n, max(NOISE_SAMPLES, 2 * size))
    measured = [layer for k, layer in enumerate(model.layers) if k in noise.measured_layers(model)]
    traces, signals = [], []
    for start in range(0, len(pick) - size + 1, size):
        rows = pick[start : start + size]
        model.compute_gradients(data.x_train[rows], data.y_train[rows], loss)
        estimates = [noise.dense_noise(layer) for layer in measured]
        traces.append(sum(t for t, _ in estimates))
        signals.append(sum(s for _, s in estimates))
    judged = all(c.verdict != FAIL for c in before if c.name == "gradient flow")
    b_simple = noise.b_simple(traces, signals)
    t = config["training"]
    return checkup.batch_size(batch, b_simple, len(traces) * size, t["batching"], n, judged)


def _learning_rate(config, loss, data: PreparedData, before: list[Check]) -> Check:
    """The range test, on the network with the fixes of the checks ``before`` applied: on a network that explodes
    at its start (its initializer off) any rate diverges, and the rate to suggest is the fixed network's."""
    from dnncli.experiment.lrfind import lr_find

    rate, key = config["optimizer"]["learning_rate"], "optimizer.learning_rate"
    if isinstance(rate, dict):  # a schedule: its initial rate
        rate, key = rate.get("initial_learning_rate"), "optimizer.learning_rate.initial_learning_rate"
    if not isinstance(rate, (int, float)):
        return Check("learning rate", OK, None, None, "~", "the schedule has no initial rate to compare")
    fixes = _fixes_before(before, key)
    try:
        found = lr_find(config.with_overrides(fixes) if fixes else config)
    except DnnError as err:
        return Check("learning rate", WARN, rate, None, "~", f"the range test could not run: {err.message}")
    diverged = found["rates"][-1] if found["stopped"].startswith("the ") else None  # it stopped early: diverged
    # how far the smoothed loss fell below where it stood once settled (lr_find leaves its first steps out too)
    smoothed = [v for v in found["smoothed"] if math.isfinite(v)]
    settled = smoothed[min(10, len(smoothed) // 5) :]
    fell = 1 - min(settled) / settled[0] if settled and settled[0] > 0 else 1.0
    check = _with(fixes, checkup.learning_rate(float(rate), found["suggested"], diverged, key, fell))
    return _verified(check, config.with_overrides(fixes) if fixes else config, loss, data)


def _verified(check: Check, config, loss, data: PreparedData) -> Check:
    """The range test's rate is a guide (on Adam it often lies far above a rate that trains well): its fix is kept
    only where the same steps at that rate end with a held-out loss clearly lower (``LOWER``) than at the config's;
    otherwise the rate is kept, the check passes, and it says what the probe measured."""
    if not check.fix:
        return check
    x, y, x_held, y_held = _held_out(data)
    steps = _probe_steps(config, len(x))
    now = _probe(config, loss, x, y, x_held, y_held, steps)
    then = _probe(config.with_overrides(check.fix), loss, x, y, x_held, y_held, steps)
    if then < LOWER * now:
        check.detail += f"; {steps} steps at it end with a held-out loss of {then:.4g} against {now:.4g}"
        return check
    ended = "went non-finite" if math.isinf(then) else f"ended with a held-out loss of {then:.4g}"
    check.detail += (
        f"; but {steps} steps at {check.fix[0].split('=', 1)[1]} {ended}, against {now:.4g} at the config's rate:"
        " the rate is kept"
    )
    # measured on this network, the config's rate does as well: the distance from the range test's rate alone is
    # no fault (the verdict stays where the config's own rate went non-finite)
    check.verdict, check.fix = (OK if math.isfinite(now) else check.verdict), []
    return check


def _fixes_before(before: list[Check], leave_out: str = "") -> list[str]:
    """The fixes of the checks ``before`` (but those of ``leave_out``'s key): a check that measures the network
    to train measures it with them."""
    return [
        o for o in merged([c.fix for c in before if c.verdict != OK])[0] if not (leave_out and o.startswith(leave_out))
    ]


def _with(fixes: list[str], check: Check) -> Check:
    if fixes:
        check.detail += f" (with the fixes above: {' '.join(fixes)})"
    return check


def _gradient_check(config, data: PreparedData, before: list[Check]) -> Check:
    """Central differences on the network to train, the fixes above applied (on raw inputs in the thousands the
    differences themselves lose digits); without fixes, on the data prepared already."""
    from dnncli.experiment.inspection import gradcheck_config

    # the fixes that change the network or its data; the rate and the batches change no gradient
    fixes = [o for o in _fixes_before(before) if not o.startswith(("optimizer.", "training."))]
    if fixes:
        report = gradcheck_config(config.with_overrides(fixes), samples=4, entries=10)
    else:
        report = gradcheck_config(config, samples=4, entries=10, data=data)
    return _with(fixes, checkup.gradient_check(report))
