"""A bound on a measured value, as a teacher writes it: ``">= 0.9"``, ``"< 0.05"``, ``"== 0"``, or in words,
``at least 0.9``, ``at most 0.1``, ``above 0``, ``below 0.05``, ``exactly 0`` (words need no quotes in YAML, where a
leading ``>`` starts a folded block). ``reaches`` adds the epoch: ``">= 0.9 by epoch 10"``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dnncli.errors import DnnError

WORDS = {"at least": ">=", "at most": "<=", "above": ">", "below": "<", "exactly": "=="}
OPS = (">=", "<=", ">", "<", "==")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BOUND = re.compile(rf"\s*(>=|<=|==|>|<|at least|at most|above|below|exactly)\s*({_NUMBER})\s*")
_BY_EPOCH = re.compile(r"(.*?)\s+by\s+epoch\s+(\S+)\s*")
FORMS = "'>= 0.9', '> 0', '<= 0.1', '< 0.1', '== 0', or in words: 'at least 0.9', 'at most 0.1', 'above 0'"


@dataclass(frozen=True)
class Bound:
    """``value OP number``: ``op`` one of ``OPS``."""

    op: str
    number: float

    def holds(self, value) -> bool:
        """Whether ``value`` meets the bound; a value that is missing or not finite never does."""
        if value is None or not math.isfinite(value):
            return False
        x, n = float(value), self.number
        return {">=": x >= n, "<=": x <= n, ">": x > n, "<": x < n, "==": x == n}[self.op]

    def text(self) -> str:
        """The canonical spelling, as ``dnn validate`` writes it back: ``>= 0.9``."""
        return f"{self.op} {self.number:g}"


def parse_bound(text, what: str) -> Bound:
    """A bound from its text; anything else is a ``DnnError`` saying what a bound looks like."""
    m = _BOUND.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise DnnError(f"{what} must be a bound such as {FORMS}. Received: {text!r}")
    number = float(m.group(2))
    if not math.isfinite(number):
        raise DnnError(f"{what}: the bound's number must be finite. Received: {text!r}")
    return Bound(WORDS.get(m.group(1), m.group(1)), number)


def parse_by_epoch(text, what: str) -> tuple[Bound, int]:
    """``">= 0.9 by epoch 10"``: the bound and the epoch (1-based) by which it must hold."""
    m = _BY_EPOCH.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise DnnError(f"{what} must be a bound and an epoch, such as '>= 0.9 by epoch 10'. Received: {text!r}")
    bound = parse_bound(m.group(1), what)
    if not m.group(2).isdigit() or int(m.group(2)) < 1:
        raise DnnError(f"{what}: the epoch must be a positive whole number. Received: {text!r}")
    return bound, int(m.group(2))
