"""The one exception type for user errors, and the small checks that raise it.

Every message names the thing at fault and echoes what was received, in the
form Keras uses: ``dense.units must be a positive integer. Received: 0``.
An error also carries ``key``, the path of the offending value inside the
spec it came from (``("layers", 1, "units")``), so that the configuration
layer can point at the file and line.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator


class DnnError(ValueError):
    """A user error: bad configuration, bad data, bad file.

    Parameters
    ----------
    message : str
        One line, naming the thing at fault and echoing the value received.
    key : tuple, default=()
        Path of the offending value inside the spec it came from.
    """

    def __init__(self, message: str, key: tuple = ()):
        super().__init__(message)
        self.message = message
        self.key = tuple(key)

    def at(self, *prefix) -> DnnError:
        """Return the same error with ``prefix`` prepended to its key path."""
        err = DnnError(self.message, tuple(prefix) + self.key)
        err.__cause__ = self.__cause__
        return err

    def __str__(self) -> str:
        return self.message


class DnnWarning(UserWarning):
    """Something a config asks for that will not happen as written (Keras warns, and goes on)."""


def warn(message: str) -> None:
    """Warn the user in one line, through Python's ``warnings`` (a library prints nothing itself)."""
    warnings.warn(message, DnnWarning, stacklevel=2)


@contextlib.contextmanager
def warnings_as_lines(write: Callable[[str], None]) -> Iterator[None]:
    """Within: each ``DnnWarning`` goes to ``write`` as ``warning: MESSAGE``, once per distinct message.

    A command wraps itself in this, so that a warning shows once per command, also when an earlier command in
    the same process (a test, a notebook) showed it already; other warnings keep Python's handling.
    """
    seen: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always", DnnWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, DnnWarning):
                shown(message, category, filename, lineno, file, line)
            elif str(message) not in seen:
                seen.add(str(message))
                write(f"warning: {message}")

        warnings.showwarning = show
        yield


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" Did you mean '{by_lower[close[0]]}'?" if close else ""


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 step"``, ``"2 steps"``: a count with its noun in the right number (``words``: an irregular plural)."""
    return f"{n} {word if n == 1 else words or word + 's'}"


def _fmt(value) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"an integer of {len(str(abs(value)))} digits ({str(value)[:6]}...)"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _key(name: str) -> tuple:
    # "dense.units" -> ("units",): the last part is the argument's own key.
    return (name.rsplit(".", 1)[-1],)


MAX_INT = 2**31 - 1  # no count, size or window here is sanely larger; past it a value is a typo or an attack


def check_int(value, name: str, minimum: int | None = 1, maximum: int = MAX_INT) -> int:
    """Return ``value`` as int, or raise if it is not an integer in [``minimum``, ``maximum``]."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or (minimum is not None and value < minimum):
        what = {1: "a positive integer", 0: "a non-negative integer"}.get(
            minimum, f"an integer >= {minimum}" if minimum is not None else "an integer"
        )
        raise DnnError(f"{name} must be {what}. Received: {_fmt(value)}", _key(name))
    if value > maximum:
        raise DnnError(f"{name} must be at most {maximum:,}. Received: {_fmt(value)}", _key(name))
    return int(value)


def check_float(
    value,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as float, or raise if it is not a finite number in range."""
    try:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        ok = False
    if ok:
        value = float(value)
        if low is not None and (value < low or (low_open and value == low)):
            ok = False
        if high is not None and (value > high or (high_open and value == high)):
            ok = False
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        span = f" in {lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
        if low is None and high is None:
            span = ""
        elif high is None:
            span = f" {'>' if low_open else '>='} {low}"
        elif low is None:
            span = f" {'<' if high_open else '<='} {high}"
        raise DnnError(f"{name} must be a finite number{span}. Received: {_fmt(value)}", _key(name))
    return value


def check_bool(value, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise."""
    if not isinstance(value, bool):
        raise DnnError(f"{name} must be true or false. Received: {_fmt(value)}", _key(name))
    return value


def check_choice(value, name: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise with a suggestion."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(choices)
        raise DnnError(f"{name} must be one of {listed}. Received: {_fmt(value)}.{suggest(value, choices)}", _key(name))
    return value


def check_optional_seed(value, name: str) -> int | None:
    """Return ``value`` if it is None or a non-negative integer seed, else raise."""
    return None if value is None else check_int(value, name, minimum=0)
