"""``--try-advice`` and ``--write-config``: each advice item tried on the network, ranked by what it did, the cure kept.

Each item is applied to the config as written and the same steps are run
again (same data, order and seed), then the best two or three items together.
The outcomes are ranked: a cure first (every flag the network had cleared, no
new flag, nothing non-finite, the loss lower at the end), the simplest cure
before a combination; then by the share of flags cleared, the fewest new
flags, a lower loss. The first is recommended where it helps at all; the config
with it applied is written as a person would write it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dnncli.diagnostics.inspection_report import InspectionReport, NonFinite
from dnncli.errors import DnnError
from dnncli.experiment.inspection import inspect_config
from dnncli.experiment.modeline import modeline
from dnncli.files import atomic_write_text, check_target

COMBINE = (2, 3)  # how many of the best items are tried together
LOWER = 0.95  # a loss this fraction of the network's own, or less, is lower
GAP = 0.5  # a network still above an uninformed model's loss must have come this share of the way to it
FITTED = 1e-3  # a loss at or below this: the network fits its batches already


def _lasting(report: InspectionReport) -> dict[tuple[str, str], int]:
    """(layer, flag) -> layer index, for the flags raised and not transient."""
    return {(layer.name, f): layer.index for layer in report.layers for f in layer.flags}


def _final(report: InspectionReport) -> float:
    final = report.loss.final
    if report.nonfinite is not None or final is None or not math.isfinite(final):
        return math.inf
    return final


@dataclass
class Outcome:
    """What one item (or several together) did to the network's flags and loss."""

    advice: str  # "2", or "1+3" for items tried together
    set: list[str]
    cleared: list[dict] = field(default_factory=list)
    remaining: list[dict] = field(default_factory=list)
    new: list[dict] = field(default_factory=list)
    loss_before: float | None = None
    loss_after: float | None = None
    nonfinite: NonFinite | None = None
    error: str | None = None
    rank: int = 0
    recommended: bool = False
    report: InspectionReport | None = field(default=None, repr=False, compare=False)  # the steps run with it
    data_before: float | None = None  # the network's own data loss at the end of the same steps

    @property
    def _before(self) -> float:
        return math.inf if self.loss_before is None else self.loss_before

    @property
    def _after(self) -> float:
        return math.inf if self.loss_after is None or self.nonfinite else self.loss_after

    @property
    def lower(self) -> bool:
        """The loss ends clearly lower (by ``LOWER``): 0.6932 -> 0.6931 is a network still knowing nothing. A
        network whose loss was already next to 0 (``FITTED``) only has to keep it there: 0 -> 2.4e-4 is no worse."""
        before, after = self._before, self._after
        return after < LOWER * before or (before <= FITTED and after <= FITTED)

    @property
    def informed(self) -> bool:
        """The network learns: its data loss ends below an uninformed model's (where that is known), or got at
        least halfway there from the network's own. 4.87 -> 4.09 with 4 classes (ln 4 = 1.39) is lower and still
        a network that knows nothing; 0.95 -> 0.70 with 2 (ln 2 = 0.69), one on its way. From non-finite to
        finite, a network that can now learn, within the probe or not."""
        span = None if self.report is None else self.report.loss
        if span is None or not span.knows_nothing or self.loss_before is None or self.data_before is None:
            return True
        return self.data_before - span.final_data >= GAP * (self.data_before - span.uninformed)

    @property
    def cured(self) -> bool:
        return not (self.error or self.remaining or self.new or self.nonfinite) and self.lower and self.informed

    @property
    def higher(self) -> bool:
        """The loss ends clearly higher (the mirror of ``lower``): flags cleared at that price are no help."""
        return LOWER * self._after > self._before

    @property
    def helps(self) -> bool:
        return not (self.error or self.nonfinite or self.new or self.higher) and (bool(self.cleared) or self.lower)

    def key(self) -> tuple:
        """Larger is better: a cure (the simplest first), then the flags cleared net of new ones, fewer new, a
        lower loss: clearing one pathology by raising another is no progress."""
        if self.error:
            return (-1,)
        after = self._after
        parts = self.advice.count("+") + 1
        if self.cured:
            return (3, -parts, -after)
        net = len(self.cleared) - len(self.new)
        # what helps before what does not: the table's outcome column reads down in order, cure, helps, no
        tier = 2 if self.helps else 1 if not self.nonfinite else 0
        return (tier, net, -len(self.new), self.lower, -after, -parts)

    def to_dict(self) -> dict:
        out = {
            "advice": self.advice,
            "set": self.set,
            "rank": self.rank,
            "recommended": self.recommended,
            "cured": self.cured,
            "helps": self.cured or self.helps,
        }
        if self.error:
            return out | {"error": self.error}
        return out | {
            "cleared": self.cleared,
            "remaining": self.remaining,
            "new": self.new,
            "loss_before": self.loss_before,
            "loss_after": self.loss_after,
            "nonfinite": self.nonfinite.to_dict() if self.nonfinite is not None else None,
        }


def _listed(keys, order) -> list[dict]:
    return [{"layer": name, "flag": f} for name, f in sorted(keys, key=lambda k: (order[k], k[1]))]


def _outcome(config, label: str, sets: list[str], baseline: InspectionReport, steps, every) -> Outcome:
    try:
        after = inspect_config(config.with_overrides(sets), steps=steps, every=every)
    except DnnError as err:
        return Outcome(label, sets, error=err.message)
    before, now = _lasting(baseline), _lasting(after)
    order = {**now, **before}
    return Outcome(
        label,
        sets,
        cleared=_listed(before.keys() - now.keys(), order),
        remaining=_listed(before.keys() & now.keys(), order),
        new=_listed(now.keys() - before.keys(), order),
        loss_before=baseline.loss.final if math.isfinite(_final(baseline)) else None,
        loss_after=after.loss.final if math.isfinite(_final(after)) else None,
        nonfinite=after.nonfinite,
        report=after,
        data_before=baseline.loss.final_data,
    )


def _clash(items: list[Outcome]) -> bool:
    """Whether two items set one place: the same key, or one inside the other (a whole layer list replaced,
    and a layer of the old list changed by its index; a key of every layer, and the same key of one)."""
    keys = [(k, s.split("=", 1)[0].split(".")) for k, o in enumerate(items) for s in o.set]
    return any(i != j and _within(a, b) for i, a in keys for j, b in keys)


def _within(a: list[str], b: list[str]) -> bool:
    """Whether the place ``b`` is ``a`` or inside it, a ``*`` standing for any index (``model.layers.*.activation``
    sets ``model.layers.0.activation`` too)."""
    return len(a) <= len(b) and all(x == y or "*" in (x, y) for x, y in zip(a, b))


def _compatible(good: list[Outcome], n: int) -> list[Outcome]:
    """The first ``n`` items, in ``good``'s order, that can be applied together (batch normalization's new layer
    list goes with no item that sets a layer's key: it is passed over for the next); [] where no ``n`` can."""
    return next((list(c) for c in itertools.combinations(good, n) if not _clash(list(c))), [])


def _clearing(o: Outcome) -> tuple:
    """Larger first among the items to combine: the flags cleared net of new ones, fewer new, a lower loss (an item
    that cleared much at the price of a new flag may be what another item completes)."""
    return (len(o.cleared) - len(o.new), -len(o.new), o.lower, -o._after)


def try_advice(config, baseline: InspectionReport, advice: list[dict], steps=None, every=None) -> list[dict]:
    """Try each advice item, then the best ones together, on ``baseline``'s steps; return the outcomes ranked."""
    singles = [_outcome(config, str(k), a["set"], baseline, steps, every) for k, a in enumerate(advice, start=1)]
    outcomes = list(singles)
    # candidates to combine: items that cleared something (one may clear what another raised: a zero bias in a
    # sigmoid stack, then a rate that moves it; relu on raw inputs goes non-finite, on scaled ones it learns)
    good = sorted((o for o in singles if o.cleared and not o.error), key=_clearing, reverse=True)
    if good and not any(o.cured for o in singles):
        for n in COMBINE:
            chosen = _compatible(good, n)
            if not chosen:
                continue  # no n items can go together
            label = "+".join(sorted((o.advice for o in chosen), key=int))
            outcomes.append(_outcome(config, label, [s for o in chosen for s in o.set], baseline, steps, every))
    outcomes.sort(key=Outcome.key, reverse=True)
    for rank, o in enumerate(outcomes, start=1):
        o.rank = rank
    best = next((o for o in outcomes if o.cured), None) or next((o for o in outcomes if o.helps), None)
    if best is not None:
        best.recommended = True
    return [o.to_dict() for o in outcomes]


def recommended(tried: list[dict]) -> dict | None:
    return next((t for t in tried if t.get("recommended")), None)


# the fixed config ---------------------------------------------------------------------
FLOW_WIDTH = 100  # a mapping whose one-line form is at most this wide is written on one line


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()


def _scalar(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return text[: -len("\n...")] if text.endswith("\n...") else text.removesuffix("...").strip()


def _block(key: str, value, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        flat = all(
            not isinstance(v, (dict, list)) or (isinstance(v, list) and len(_flow(v)) < 40) for v in value.values()
        )
        if value and flat and len(_flow(value)) <= FLOW_WIDTH:
            return [f"{pad}{key}: {_flow(value)}"]
        out = [f"{pad}{key}:"]
        for k, v in value.items():
            out += _block(str(k), v, indent + 2)
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [f"{pad}{key}:"] + [f"{pad}  - {_flow(v)}" for v in value]
    if isinstance(value, list):
        return [f"{pad}{key}: {_flow(value)}"]
    return [f"{pad}{key}: {_scalar(value)}"]


def dump_config(mapping: dict, comment: str = "", at: Path | None = None) -> str:
    """A config mapping as a person writes it: sections in blocks, a layer a line, short mappings on one line; its
    first line the modeline pointing an editor at the schema (by a path relative to ``at``, the file written; else
    to the current directory)."""

    class _Plain(yaml.SafeDumper):  # shared objects written out each time, never as anchors
        def ignore_aliases(self, data):
            return True

    mapping = yaml.load(yaml.dump(mapping, Dumper=_Plain, sort_keys=False), Loader=yaml.SafeLoader)
    lines = [modeline(at)] + [f"# {line}" if line else "#" for line in comment.splitlines()]
    for key, value in mapping.items():
        lines += _block(str(key), value, 0)
    return "\n".join(lines) + "\n"


def write_fixed_config(config, item: dict, out: Path, force: bool = False, source: str = "") -> Path:
    """Write ``config`` with ``item``'s overrides applied to it as written; never over a file without ``force``,
    and never over anything but a regular file."""
    out = Path(out)
    check_target(out, force, "--write-config")  # a directory, a FIFO, /dev/null: never replaced
    fixed = config.with_overrides(item["set"])  # resolves: the written config is one dnn train takes
    written = fixed.written if fixed.written is not None else fixed.resolved
    what = item.get("change") or " ".join(item["set"])
    comment = (
        f"{config.name}{f' ({source})' if source else ''}, with the advice dnn inspect-gradients --try-advice"
        f" recommended:\n{what}"
    )
    atomic_write_text(out, dump_config(written, comment, at=out))
    return out
