"""``expect:`` in a sweep file: comparisons of trials by their parameters, judged over the repeats' means and spreads.

Each entry reads aloud: *gap.loss is lower with rate 0.3 than with rate 0.0*::

    expect:
      - claim: dropout reduces overfitting      # optional: what the comparison stands for
        measure: gap.loss                       # any measure (see measures.FAMILIES)
        lower: {rate: 0.3}                      # or higher: the trials with these parameters...
        than: {rate: 0.0}                       # ...against the trials with these

A side is every trial whose parameters match (a key is the sweep's dotted key or its last part, when that is
unique); its mean and spread (standard deviation, as the sweep's table) are over its trials, the repeats' seeds
included. A comparison holds when the means are in the order claimed and the spreads (mean ± spread) do not
overlap: a difference inside the seeds' noise fails, and says so. ``same: [{...}, {...}]`` claims the opposite (a
choice that makes no difference): it holds when the spreads overlap. A side whose trials never reach an
``epochs_to`` bound is beyond any side that does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from dnncli.errors import DnnError, plural, suggest
from dnncli.experiment.expect.measures import Measure, Outcome, measure, parse_measure
from dnncli.registry import build_section


class Comparison:
    """One entry of a sweep's ``expect:`` list.

    Parameters
    ----------
    measure : str
        What is compared, measured on each trial: ``gap.loss``, ``final.val_loss``, ``weights.zero``, ...
    lower : mapping or None, default=None
        The parameters (key -> value) of the trials whose measure must be the lower...
    higher : mapping or None, default=None
        ... or the higher...
    than : mapping or None, default=None
        ... than the trials with these parameters.
    same : list or None, default=None
        Instead: two mappings of parameters whose trials' measure must be the same within the seeds' noise (their
        spreads overlap): a claim that a choice makes no difference.
    claim : str or None, default=None
        The claim the comparison stands for, as a teacher says it; shown with the verdict.
    """

    def __init__(self, measure: str, lower=None, higher=None, than=None, same=None, claim=None):
        given = [k for k, v in (("lower", lower), ("higher", higher), ("same", same)) if v is not None]
        if len(given) != 1:
            raise DnnError(
                "give one of lower and higher (with than), or same: the trials whose measure must be the lower, the"
                f" higher, or the same as others'. Received: {', '.join(given) or 'none of them'}."
            )
        if same is not None:
            if not isinstance(same, list) or len(same) != 2:
                raise DnnError(
                    f"same takes two sets of parameters: [{{a: 1}}, {{a: 2}}]. Received: {same!r}", ("same",)
                )
            if than is not None:
                raise DnnError("same names both sides; than goes with lower or higher.", ("than",))
            lower, than = same
        elif than is None:
            raise DnnError("needs than: the parameters of the trials to compare with.", ("than",))
        if claim is not None and not isinstance(claim, str):
            raise DnnError(f"claim must be text. Received: {claim!r}", ("claim",))
        self.measure = measure
        self.direction = "higher" if higher is not None else "same" if same is not None else "lower"
        self.side = higher if higher is not None else lower
        self.than = than
        self.claim = claim


@dataclass
class ParsedComparison:
    """A comparison checked against the sweep: its measure parsed, each side's parameters by their full keys."""

    measure: Measure
    direction: str  # lower | higher | same
    side: dict
    than: dict
    claim: str | None = None

    def sentence(self) -> str:
        m, a, b = self.measure.text(), label(self.side), label(self.than)
        if self.direction == "same":
            return f"{m} is the same, within the seeds' noise, with {a} as with {b}"
        return f"{m} is {self.direction} with {a} than with {b}"


def label(params: dict) -> str:
    """Parameters as a reader says them: ``rate=0.5, kernel_initializer=random_normal(stddev=1)``."""
    return ", ".join(f"{k.split('.')[-1]}={value_text(v)}" for k, v in params.items())


def value_text(v) -> str:
    """A parameter's value, short: a spec by its name and arguments, a layer list by its layers' types."""
    if isinstance(v, dict):
        args = ", ".join(f"{k}={value_text(x)}" for k, x in v.items() if k != "name")
        return f"{v.get('name', '')}({args})" if args else str(v.get("name", v))
    if isinstance(v, list) and all(isinstance(x, dict) and "type" in x for x in v):
        counts: dict[str, int] = {}
        for x in v:
            counts[x["type"]] = counts.get(x["type"], 0) + 1
        return " + ".join(f"{n} {t}" for t, n in counts.items())
    return f"{v:g}" if isinstance(v, float) else "null" if v is None else str(v)


def parse_comparisons(spec, parameters: dict, columns: list[str], metrics: list[str]) -> list[ParsedComparison]:
    """A sweep's ``expect:`` list checked against its ``parameters`` and what its base config logs. Errors carry the
    key path below ``expect`` (``(0, "lower", "rate")``), for the loader to put a line to."""
    if spec is None:
        return []
    if not isinstance(spec, list) or not spec:
        raise DnnError(
            "expect must be a list of comparisons, such as [{measure: gap.loss, lower: {rate: 0.3}, than: {rate: 0}}]."
            f" Received: {spec!r}"
        )
    out = []
    for i, entry in enumerate(spec):
        try:
            c = build_section(Comparison, entry, f"expect[{i}]")
        except DnnError as err:
            raise err.at(i) from None
        key = c.direction
        try:
            m = parse_measure(c.measure, columns, metrics)
        except DnnError as err:
            raise DnnError(err.message, (i, "measure")) from None
        where = ((i, "same", 0), (i, "same", 1)) if key == "same" else ((i, key), (i, "than"))
        side = _selection(c.side, parameters, where[0])
        than = _selection(c.than, parameters, where[1])
        if side == than:
            raise DnnError(f"both sides select the same trials ({label(side)}).", where[1])
        out.append(ParsedComparison(m, c.direction, side, than, c.claim))
    return out


def _selection(spec, parameters: dict, key: tuple) -> dict:
    """``{rate: 0.3}`` as ``{"model.layers.*.rate": 0.3}``: each key one of the sweep's, each value one it takes."""
    if not isinstance(spec, Mapping) or not spec:
        raise DnnError(f"give the trials' parameters as a mapping, such as {{rate: 0.3}}. Received: {spec!r}", key)
    out = {}
    for name, value in spec.items():
        full = [p for p in parameters if p == name or p.endswith(f".{name}")]
        if len(full) != 1:
            why = "names several" if full else "is not one of"
            short = {p.rsplit(".", 1)[-1]: p for p in parameters}
            hint = suggest(str(name), [*parameters, *short]) if not full else ""
            raise DnnError(
                f"{name!r} {why} the sweep's parameters.{hint} Parameters: {', '.join(parameters)}.",
                (*key, name),
            )
        p = parameters[full[0]]
        if "values" not in p:
            raise DnnError(f"{full[0]} is a range; comparisons select trials by values (values: [...]).", (*key, name))
        if value not in p["values"]:
            listed = ", ".join(value_text(v) for v in p["values"])
            raise DnnError(f"{value_text(value)} is not one of the values {full[0]} takes: {listed}.", (*key, name))
        out[full[0]] = value
    return out


@dataclass
class Side:
    """One side of a comparison: its trials' parameters, how many were measured, their mean and spread."""

    label: str
    n: int  # trials measured
    trials: int  # trials selected
    mean: float | None
    spread: float | None
    values: list = field(default_factory=list)
    never: int = 0  # trials that never met an epochs_to bound (their value, and the side's mean, infinite)

    @property
    def low(self) -> float:
        return min(self.values) if not all(map(math.isfinite, self.values)) else self.mean - self.spread

    @property
    def high(self) -> float:
        return max(self.values) if not all(map(math.isfinite, self.values)) else self.mean + self.spread


@dataclass
class ComparisonVerdict:
    """A comparison judged: read aloud, its two sides, and why it holds or fails."""

    sentence: str
    claim: str | None
    measure: str
    side: Side
    other: Side
    passed: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _side(params: dict, trials: list, m: Measure) -> Side:
    chosen = [t for t in trials if all(_same(t.params.get(k), v) for k, v in params.items())]
    values = [v for t in chosen if (v := measure(m, Outcome(t.run_dir, getattr(t, "result", None)))) is not None]
    if not values:
        return Side(label(params), 0, len(chosen), None, None, [])
    if all(map(math.isfinite, values)):
        mean, spread = float(np.mean(values)), float(np.std(values))
    else:  # some trial never got there (epochs_to): the side's mean is that far too
        mean, spread = math.inf, math.nan
    spread = spread if len(values) > 1 else None
    return Side(label(params), len(values), len(chosen), mean, spread, values, sum(v == math.inf for v in values))


def _same(a, b) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def judge(comparisons: list[ParsedComparison], trials: list) -> list[ComparisonVerdict]:
    """Each comparison on ``trials`` (objects with ``params``, ``run_dir`` and, optionally, the ``result`` of a
    training just run)."""
    out = []
    for c in comparisons:
        side, other = _side(c.side, trials, c.measure), _side(c.than, trials, c.measure)
        passed, reason = _verdict(c, side, other)
        out.append(ComparisonVerdict(c.sentence(), c.claim, c.measure.text(), side, other, passed, reason))
    return out


def _verdict(c: ParsedComparison, side: Side, other: Side) -> tuple[bool, str]:
    for s in (side, other):
        if s.n == 0:
            what = "no trial has" if s.trials == 0 else f"none of the {plural(s.trials, 'trial')} measured"
            return False, f"{what} {s.label}: nothing to compare"
        if s.n < 2:
            return False, f"one trial with {s.label}: its spread over seeds is unknown (set repeats: 2 or more)"
    if c.direction == "same":
        overlap = side.low <= other.high and other.low <= side.high
        if overlap:
            return True, "the spreads overlap: no difference beyond the seeds' noise"
        which = "lower" if side.mean < other.mean else "higher"
        return False, f"it is {which} with {side.label}, beyond the seeds' noise: the choice matters here"
    lower = c.direction == "lower"
    ordered = side.mean < other.mean if lower else side.mean > other.mean
    if not ordered:
        opposite = "higher" if lower else "lower"
        return False, f"it is {opposite}, or equal: the claim does not hold here"
    apart = side.high < other.low if lower else side.low > other.high
    if not apart:
        return False, "in that order, but the spreads overlap: within the seeds' noise"
    return True, "in that order, and the spreads do not overlap"
