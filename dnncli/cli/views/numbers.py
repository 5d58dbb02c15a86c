"""Numbers as the views write them: whole, to five significant digits, one notation per column; never cut."""

from __future__ import annotations

import math
import numbers


def fmt(value) -> str:
    """A number whole, to five significant digits: fixed from 1e-3 to 1e5 (4 decimals below 10, then fewer: 0.6951,
    12.346, 3339.0), else scientific (``1.2346e-05``)."""
    return fmt_column([value])[0]


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral))


def needs_scientific(values: list) -> bool:
    """Whether a column holding these numbers is written in scientific notation (see ``fmt_column``)."""
    mags = [abs(float(v)) for v in values if _is_real(v) and math.isfinite(v) and v != 0]
    return bool(mags) and (max(mags) >= 1e5 or min(mags) < 1e-3)


def fmt_column(values: list, scientific: bool | None = None) -> list[str]:
    """The numbers of one column in one notation, each to five significant digits: fixed where every one lies
    between 1e-3 and 1e5 (4 decimals below 10, then fewer), else scientific for the whole column (``1.2346e+05``):
    never ``48097.8`` above ``1.169e+05``. Integers, None and text as ``fmt`` shows them. ``scientific``: decided
    by the caller (a column printed a row at a time)."""
    if scientific is None:
        scientific = needs_scientific(values)
    out = []
    for v in values:
        if v is None:
            out.append("-")
        elif not _is_real(v):
            out.append(str(v))
        elif math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(f"{float(v):.4e}" if scientific else _fixed(float(v)))
    return out


def sci(value, digits: int = 2) -> str:
    """Scientific notation with ``digits`` significant digits (at least two): ``1.2e-09``."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return fmt(value)
    if value == 0:
        return "0"
    return f"{value:.{max(digits, 2) - 1}e}"


def _fixed(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.{max(1, 4 - max(0, math.floor(math.log10(abs(value)))))}f}"  # 0.6951, 12.346, 3339.0
