"""The checks of ``dnn doctor``, as pure functions: each takes what was measured and returns a ``Check``, its
verdict (``ok``, ``warn``, ``fail``), the number measured against the one expected, and the fix as ``--set``
overrides (or, where no override applies, what to do). Running steps on a config is ``experiment/doctor.py``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dnncli.diagnostics.flags import layer_span
from dnncli.diagnostics.inspection_report import InspectionReport
from dnncli.diagnostics.rows import column_moments, shared_rows
from dnncli.diagnostics.stepping import USUAL_RATIO
from dnncli.errors import plural

OK, WARN, FAIL = "ok", "warn", "fail"

LARGE_INPUT, HUGE_INPUT, TINY_INPUT = 10.0, 100.0, 0.01  # a feature's root mean square, against unit scale
SPREAD, HUGE_SPREAD = 100.0, 1e4  # the largest feature's standard deviation over the smallest
DOMINANT, OVERWHELMING = 0.75, 0.9  # the majority class's share of the training labels
LEAKED = 0.05  # the share of a held-out split found in the training split that fails
LOSS_OFF, LOSS_FAR = 1.5, 3.0  # the initial loss over the loss of a model that knows nothing
BIAS_OFF = 1.0  # an output bias this large starts the outputs away from the uninformed guess
GAIN_OFF = 2.0  # an output kernel this many times Glorot's standard deviation (or less) is off
NARROW = 4  # a hidden layer with fewer units (or fewer than the classes) is a bottleneck
FIT, FIT_NEAR = 0.05, 0.2  # regression: the loss on one batch over a constant's, after the steps
CLEARLY, SLIGHTLY = 0.9, 0.97  # held-out loss with the inputs over the loss with every input zeroed
RANGE_FELL = 0.05  # a range test whose smoothed loss falls less than this share found no rate that learns
RATE_FAR, RATE_WRONG = 10.0, 30.0  # the rate against the range test's suggestion (its lowest loss's rate / 10)
# |delta W| / |W| per step: about 1e-3 is usual (Karpathy, CS231n); 30x above is a warning, a step the size of
# the weights themselves a failure; below, the monitor's stalled_ratio (1e-5) is where learning stops
UPDATE_LOW, UPDATE_HIGH, UPDATE_WILD = 1e-5, 30 * USUAL_RATIO, 1.0
GRADCHECK_WRONG = 100.0  # a relative error this many times the tolerance is a wrong backward pass ...
NOISE = 1e-8  # ... unless the error itself is this small: central differences (h = 1e-6) round at about 1e-10
BATCH_FAR, BATCH_WRONG = 10.0, 30.0  # the batch size against the gradient noise scale
# a batch below this gains little in steps and pays each step's fixed cost (a noise scale of 3 at the start, which
# grows as the loss falls, is no reason to train on batches of 4)
SMALL_BATCH = 32


@dataclass
class Check:
    """One check's verdict: the number measured, the one expected (``relation`` says how they should compare),
    why, and the fix: ``--set`` overrides, or ``hint`` where none applies."""

    name: str
    verdict: str
    measured: float | None
    expected: float | None
    relation: str  # "~" (near), "<=", ">=", "="
    detail: str
    fix: list[str] = field(default_factory=list)
    hint: str = ""
    seconds: float = 0.0  # the time the check's group took (the checks of one probe share it)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "measured": self.measured,
            "expected": self.expected,
            "relation": self.relation,
            "detail": self.detail,
            "fix": self.fix,
            "command": " ".join(f"--set {o}" for o in self.fix),
            "hint": self.hint,
            "seconds": self.seconds,
        }


def _worst(*conditions: tuple[bool, str]) -> str:
    return next((v for hit, v in conditions if hit), OK)


# the data ---------------------------------------------------------------------------------
def input_scale(x: np.ndarray, scale: str, image: bool) -> Check:
    """Features far from unit scale, or (tabular data) on very different scales, as the network receives them."""
    mean, square = column_moments(x)
    rms = np.sqrt(square)
    std = np.sqrt(np.maximum(square - mean * mean, 0.0))
    largest = float(rms.max()) if rms.size else 0.0
    live = std[std > 0]
    spread = float(live.max() / live.min()) if live.size and not image else 1.0
    verdict = _worst(
        (largest > HUGE_INPUT or spread > HUGE_SPREAD, FAIL),
        (largest > LARGE_INPUT or 0 < largest < TINY_INPUT or spread > SPREAD, WARN),
    )
    detail = f"the largest feature's root mean square is {largest:.3g}"
    if not image:
        detail += f"; the features' standard deviations lie {spread:.3g}x apart"
    fix, hint = [], ""
    if verdict != OK:
        detail += ": a network learns best from inputs of unit scale"
        if scale == "none":
            fix = ["data.scale=standardize"]
        else:
            hint = f"data.scale is {scale}, and the inputs still arrive at this scale: standardize them."
    return Check("input scale", verdict, largest, 1.0, "~", detail, fix, hint)


def constant_inputs(x: np.ndarray, image: bool, names: list[str] | None, drop: list[str]) -> Check:
    """Features with one value over the training split: they carry nothing."""
    flat = x.reshape(len(x), -1)
    constant = np.flatnonzero(flat.min(axis=0) == flat.max(axis=0)) if len(flat) else np.array([], int)
    n = len(constant)
    detail = f"{n} of {flat.shape[1]} features hold one value over the training split"
    if not n:
        return Check("constant inputs", OK, 0, 0, "=", detail)
    if image:
        return Check("constant inputs", OK, n, 0, "=", detail + " (pixels at the images' borders, as a rule)")
    named = [names[k] for k in constant] if names and len(names) == flat.shape[1] else []
    fix, hint = [], "Drop them: they carry nothing."
    if named and all("=" not in c for c in named):  # numeric CSV columns (a one-hot column is not the file's)
        fix = [f"data.drop=[{', '.join(list(drop) + named)}]"]
        detail += f" ({', '.join(named)})"
    return Check("constant inputs", WARN, n, 0, "=", detail, fix, hint if not fix else "")


def class_balance(classes: np.ndarray, n_classes: int, weighted: bool, class_names=None) -> Check:
    """The majority class's share: the accuracy of always predicting it."""
    counts = np.bincount(classes, minlength=max(n_classes, 2))
    top = int(counts.argmax())
    share = float(counts[top] / max(len(classes), 1))
    label = class_names[top] if class_names and top < len(class_names) else top
    detail = f"class {label!r} holds {share:.1%} of the training labels: always predicting it scores that accuracy"
    if weighted:
        return Check("class balance", OK, share, DOMINANT, "<=", detail + "; training.class_weight weighs it")
    verdict = _worst((share >= OVERWHELMING, FAIL), (share >= DOMINANT, WARN))
    fix = ["training.class_weight=balanced"] if verdict != OK else []
    if fix:
        detail += "; the loss rewards that guess, and accuracy hides it"
    return Check("class balance", verdict, share, DOMINANT, "<=", detail, fix)


def leakage(x_train: np.ndarray, held: dict[str, np.ndarray | None]) -> Check:
    """Held-out samples (test, validation) found, input for input, in the training split: leakage."""
    found, parts, worst = 0, [], 0.0
    for name, x in held.items():
        if x is None or not len(x):
            continue
        k = shared_rows(x_train, x)
        found += k
        worst = max(worst, k / len(x))
        parts.append(f"{k} of {len(x)} {name} samples")
    detail = f"{' and '.join(parts) or 'no held-out samples'} also in the training split"
    verdict = _worst((worst > LEAKED, FAIL), (found > 0, WARN))
    hint = "Remove the duplicates, or split after removing them: the held-out score is inflated."
    hint = "" if verdict == OK else hint
    return Check("split leakage", verdict, found, 0, "=", detail, [], hint)


# the network at its start -------------------------------------------------------------------
@dataclass
class OutputStart:
    """The output layer at initialization, as ``initial_loss`` reads it."""

    position: int  # in the config's layers
    name: str
    bias_max: float  # the largest |bias|
    product_std: float  # the standard deviation of inputs @ kernel over the batch
    kernel_gain: float  # the kernel's standard deviation over Glorot's
    input_rms: float  # of the layer's inputs
    targets_unscaled: bool = False  # a regression's targets far from mean 0 and unit scale, not standardized
    inputs_unscaled: bool = False  # the inputs far from unit scale, data.scale none (see input_scale)


def initial_loss(measured: float, expected: float, classifies: bool, out: OutputStart) -> Check:
    """The loss before any step against what a network that knows nothing scores: ln C for C classes, ln 2 per
    sigmoid unit, a regression's constant-prediction loss (the targets' variance for mean squared error)."""
    what = "ln C, a uniform guess" if classifies else "predicting the targets' mean"
    ratio = measured / expected if expected > 0 and math.isfinite(measured) else math.inf
    verdict = _worst((ratio > LOSS_FAR, FAIL), (ratio > LOSS_OFF, WARN))
    detail = f"the loss before any step is {ratio:.3g}x that of {what}"
    fix, hint = [], ""
    if verdict != OK:
        if out.targets_unscaled:
            fix, hint = ["data.target_scale=standardize"], "the targets are far from mean 0 and unit scale"
            # the output's bias and weights can travel there, in the first steps of many: slow, not wrong
            verdict = WARN
        elif out.inputs_unscaled:
            fix, hint = ["data.scale=standardize"], "the inputs are not scaled (see input scale)"
        elif out.bias_max >= BIAS_OFF and out.bias_max >= out.product_std:
            fix = [f"model.layers.{out.position}.bias_initializer=zeros"]
            hint = f"{out.name}'s bias starts at up to {out.bias_max:.3g}: the outputs start far from the guess"
        elif not 1 / GAIN_OFF <= out.kernel_gain <= GAIN_OFF:
            fix = [f"model.layers.{out.position}.kernel_initializer=glorot_uniform"]
            hint = f"{out.name}'s kernel starts at {out.kernel_gain:.3g}x Glorot's standard deviation"
        else:
            hint = (
                f"{out.name}'s inputs have a root mean square of {out.input_rms:.3g}: the layers before it scale"
                " the signal (see gradient flow)"
            )
        detail += f"; {hint}"
    return Check("initial loss", verdict, measured, expected, "~", detail, fix)


def overfit_one_batch(
    steps: int, batch: int, accuracy: float | None, loss_ratio: float, narrowest: tuple[int, str, int] | None
) -> Check:
    """A few hundred steps on one batch must fit it: every sample right (a classifier), or the loss near 0 (a
    regression: under ``FIT`` of a constant's). ``narrowest``: (position, name, units) of a hidden bottleneck."""
    if accuracy is not None:
        measured, expected, relation = accuracy, 1.0, "="
        verdict = _worst((not accuracy >= 0.9, FAIL), (accuracy < 1.0, WARN))
        detail = f"after {steps} steps on one batch of {batch}, {accuracy:.1%} of it is classified right"
    else:
        measured, expected, relation = loss_ratio, FIT, "<="
        verdict = _worst((not loss_ratio <= FIT_NEAR, FAIL), (loss_ratio > FIT, WARN))
        detail = f"after {steps} steps on one batch of {batch}, its loss is {loss_ratio:.3g}x a constant's"
    fix, hint = [], ""
    if verdict == FAIL:
        if not math.isfinite(loss_ratio):
            hint = "the loss went non-finite: see the gradient flow and the learning rate"
        elif narrowest is not None:
            position, name, units = narrowest
            fix = [f"model.layers.{position}.units=64"]
            hint = f"{name} has {units} units: too narrow to fit even one batch"
        else:
            hint = (
                "something is wired wrong (the labels, the loss, the output activation) or the steps are too large"
                " (see the learning rate)"
            )
        detail += f"; {hint}"
    return Check("overfit one batch", verdict, measured, expected, relation, detail, fix)


def uses_inputs(steps: int, with_inputs: float, zeroed: float, fits_one_batch: bool = True) -> Check:
    """The same steps with every input zeroed must end clearly worse (held-out loss) than with the inputs.
    ``fits_one_batch``: whether the network could fit one batch; if not, it learns nothing, inputs or not."""
    if not math.isfinite(with_inputs):
        detail = f"within {steps} steps the loss went non-finite with the inputs"
        hint = "See the gradient flow and the learning rate."
        return Check("uses its inputs", FAIL, None, CLEARLY * zeroed, "<=", detail, [], hint)
    ratio = with_inputs / zeroed if zeroed > 0 and math.isfinite(zeroed) else math.inf
    verdict = _worst((not ratio <= SLIGHTLY, FAIL), (ratio > CLEARLY, WARN))
    detail = (
        f"after {steps} steps the held-out loss is {with_inputs:.4g} with the inputs, {zeroed:.4g} with every input"
        " zeroed"
    )
    hint = ""
    if verdict != OK and not fits_one_batch:
        hint = "The network does not learn at all, inputs or not: see overfit one batch."
    elif verdict != OK:
        hint = (
            "The network is not using its inputs: check that the labels belong to the inputs (the target column,"
            " rows not shuffled apart) and that the inputs reach it."
        )
    return Check("uses its inputs", verdict, with_inputs, CLEARLY * zeroed, "<=", detail, [], hint)


# the diagnosis of the first steps ------------------------------------------------------------------
def gradient_flow(report: InspectionReport) -> Check:
    """``inspect-gradients``' flags over the first steps, with its first advice."""
    order = [layer.name for layer in report.layers]
    lasting: dict[str, list[str]] = {}
    transient: dict[str, list[str]] = {}
    for layer in report.layers:
        for flag in layer.flags:
            lasting.setdefault(flag, []).append(layer.name)
        for flag in layer.transient:
            transient.setdefault(flag, []).append(layer.name)
    flagged = {name for names in lasting.values() for name in names}
    parts = [f"{flag}: {layer_span(names, order)}" for flag, names in lasting.items()]
    parts += [f"{flag} (transient): {layer_span(names, order)}" for flag, names in transient.items()]
    if report.nonfinite is not None:
        parts.append(report.nonfinite.message)
    verdict = _worst((bool(flagged) or report.nonfinite is not None, FAIL), (bool(transient), WARN))
    detail = f"over {plural(report.steps_run, 'step')}: {'; '.join(parts) or 'no flag raised'}"
    fix, hint = [], ""
    if verdict == FAIL and report.advice:  # the first advice: the cause furthest upstream
        fix, hint = list(report.advice[0]["set"]), report.advice[0]["text"]
    return Check("gradient flow", verdict, len(flagged), 0, "=", detail, fix, hint)


def update_ratio(layers: list[tuple[str, float | None]]) -> Check:
    """Each layer's step |delta W| / |W| against the usual 1e-3: the layer furthest from it."""
    known = [(name, r) for name, r in layers if r is not None and math.isfinite(r)]
    if not known:
        return Check("update ratio", OK, None, USUAL_RATIO, "~", "no step was measured")

    def distance(item):
        return abs(math.log10(max(item[1], 1e-30) / USUAL_RATIO))

    name, ratio = max(known, key=distance)
    verdict = _worst((ratio >= UPDATE_WILD, FAIL), (ratio > UPDATE_HIGH or ratio < UPDATE_LOW, WARN))
    detail = (
        f"{name}'s steps move its kernel by {ratio:.2g} of its norm (the furthest from about 1e-3, the usual ratio"
        " of CS231n)"
    )
    hint = ""
    if verdict != OK:
        what = "learns too slowly" if ratio < UPDATE_LOW else "is thrown around"
        hint = f"at this learning rate it {what}: see the gradient flow and the learning rate"
        detail += f"; {hint}"
    return Check("update ratio", verdict, ratio, USUAL_RATIO, "~", detail, [], hint)


def learning_rate(rate: float, suggested: float, diverged_at: float | None, key: str, fell: float = 1.0) -> Check:
    """The config's rate against the range test's suggestion (Smith 2015: the lowest smoothed loss's rate / 10);
    past the rate where the test's loss diverged, it fails. ``fell``: the share by which the test's smoothed loss
    fell below its start; where it hardly fell, no rate lowers the loss and there is nothing to suggest."""
    if fell < RANGE_FELL:
        detail = f"over the range test the smoothed loss never fell {RANGE_FELL:.0%} below its start: no rate lowers it"
        hint = "Nothing to compare the rate with: see overfit one batch and uses its inputs."
        return Check("learning rate", WARN, rate, None, "~", detail, [], hint)
    ratio = rate / suggested if suggested > 0 else math.inf
    verdict = _worst(
        ((diverged_at is not None and rate >= diverged_at) or ratio > RATE_WRONG, FAIL),
        (ratio > RATE_FAR or ratio < 1 / RATE_FAR, WARN),
    )
    detail = f"the range test suggests {suggested:.3g}"
    if diverged_at is not None:
        detail += f", and its loss diverged at {diverged_at:.3g}"
    fix = []
    if verdict != OK:
        side = "above" if ratio > 1 else "below"
        times = ratio if ratio > 1 else 1 / ratio
        detail += f"; {rate:g} is {times:.3g}x {side} the suggestion"
        fix = [f"{key}={float(f'{suggested:.2g}'):g}"]
    return Check("learning rate", verdict, rate, suggested, "~", detail, fix)


def batch_size(batch: int, b_simple: float, samples: int, batching: str, n_train: int, judged: bool = True) -> Check:
    """The batch size against the gradient noise scale B_simple (McCandlish et al., 2018) at the initial weights,
    measured over ``samples`` samples: far above it, larger batches spend samples for little gain; far below, each
    step is mostly noise. ``judged``: False where the gradients are flagged, and the noise scale is that of a
    network to fix first."""
    if not samples or math.isnan(b_simple):
        return Check("batch size", OK, batch, None, "~", "the noise scale needs batches of two samples or more")
    detail = (
        f"the gradient noise scale B_simple is {b_simple:.3g} at the start, over {samples} samples (it grows as the"
        " loss falls: dnn plot draws it over a run)"
    )
    if math.isinf(b_simple):
        detail = f"at the start, over {samples} samples, the gradient is within its own noise (B_simple unbounded)"
    expected = b_simple if math.isfinite(b_simple) else None
    if not judged:
        return Check("batch size", OK, batch, expected, "~", f"{detail}; not judged while the gradient flow fails")
    if b_simple < SMALL_BATCH:
        detail += f"; any batch up to {SMALL_BATCH} is as good"
        expected = SMALL_BATCH
    ratio = batch / max(b_simple, SMALL_BATCH) if batch > b_simple else batch / b_simple
    verdict = _worst((ratio > BATCH_WRONG, FAIL), (ratio > BATCH_FAR or ratio < 1 / BATCH_FAR, WARN))
    fix = []
    if verdict != OK:
        if ratio > 1:
            detail += f"; a batch of {batch} spends samples for little gain"
        else:
            detail += f"; at a batch of {batch} each step is mostly noise"
        # the power of two nearest B_simple; none where it is unbounded (the gradient may be 0: a dead network)
        size = min(max(SMALL_BATCH, 2 ** round(math.log2(b_simple))), n_train) if math.isfinite(b_simple) else batch
        if size != batch:
            fix = ["training.batching=mini-batch"] if batching != "mini-batch" else []
            fix.append(f"training.batch_size={size}")
    return Check("batch size", verdict, batch, expected, "~", detail, fix)


def gradient_check(report: dict) -> Check:
    """Central differences against the backward pass (``dnn gradcheck``): the largest relative error; past the
    tolerance a warning, past ``GRADCHECK_WRONG`` times it (no rounding or relu kink explains that) a failure."""
    rows = report["rows"]
    worst = max(rows, key=lambda r: r["max_rel_error"], default=None)
    if worst is None:
        return Check("gradient check", OK, None, report["tolerance"], "<=", "no trainable weight to check")
    where = f"{worst['layer']}.{worst['param']}"
    detail = f"the largest relative error, {where}, over {report['samples']} samples"
    hint = ""
    tolerance = report["tolerance"]
    wrong = [r for r in rows if not r["max_rel_error"] <= GRADCHECK_WRONG * tolerance and r["max_abs_error"] > NOISE]
    verdict = _worst((bool(wrong), FAIL), (not report["passed"], WARN))
    if verdict != OK:
        bad = [f"{r['layer']}.{r['param']}" for r in rows if not r["passed"]]
        detail += f"; the backward pass disagrees with central differences in {', '.join(bad)}"
        hint = "A layer's backward pass is wrong: report it with the config."
        if verdict == WARN:
            hint = (
                "Slightly, or on gradients so small that the differences' rounding is as large: a relu's kink or"
                " rounding explains it, not a wrong backward pass."
            )
    return Check("gradient check", verdict, worst["max_rel_error"], report["tolerance"], "<=", detail, [], hint)
