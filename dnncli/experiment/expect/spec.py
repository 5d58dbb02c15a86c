"""The ``expect:`` section of a config: what the run's outcome must show, declared once (``Expectations``: its keys,
their meaning, each value's form) and resolved with the rest of the config, so an unknown key or a malformed bound
is a config error with its file, line and nearest name."""

from __future__ import annotations

from collections.abc import Mapping

from dnncli.diagnostics.flags import FLAGS
from dnncli.errors import DnnError, suggest
from dnncli.experiment.expect.bounds import parse_bound, parse_by_epoch
from dnncli.experiment.expect.measures import FAMILIES, parse_measure
from dnncli.registry import section_parameters

STATUSES = ("completed", "early_stopped", "finished", "nonfinite")  # finished: completed or stopped early
LAYERS_WORDS = ("none", "any")


class Expectations:
    """The ``expect:`` section: assertions on the run's outcome, checked when ``dnn train`` ends (a verdict table;
    exit 1 when one fails, the run kept) and again by ``dnn check RUN_DIR``. Each key is a measure family with its
    names and bounds (``test: {accuracy: ">= 0.9"}``, or dotted, ``test.accuracy: ">= 0.9"``); a bound is ``>=``,
    ``>``, ``<=``, ``<`` or ``==`` and a number, or ``at least``, ``at most``, ``above``, ``below``, ``exactly``.

    Parameters
    ----------
    test : mapping or None, default=None
        The test split's ``loss`` or a metric, after training -> bound.
    final : mapping or None, default=None
        A logged column (``loss``, ``val_accuracy``, ``epoch``, ...) at the last epoch -> bound.
    best : mapping or None, default=None
        A logged column's best value over the epochs (lowest loss, highest accuracy) -> bound.
    gap : mapping or None, default=None
        ``loss`` or a metric -> bound on training's lead over validation at the last epoch
        (``val_loss - loss``, ``accuracy - val_accuracy``).
    weights : mapping or None, default=None
        ``zero`` (share of final kernel weights below 0.001 in size), ``norm`` (their L2 norm), ``max`` -> bound.
    time : mapping or None, default=None
        ``epoch`` (the median epoch's seconds) or ``total`` -> bound.
    jitter : mapping or None, default=None
        ``loss``: the batch loss's mean step-to-step change over its level, second half of the steps -> bound.
    path : mapping or None, default=None
        ``straightness``: how far the kernels got from their start over the length of the path they took -> bound.
    reaches : mapping or None, default=None
        A logged column -> ``"BOUND by epoch N"``: some epoch up to N meets the bound (``">= 0.9 by epoch 10"``).
    flags : "none", mapping or None, default=None
        ``none``: no flag raised. Or flag -> ``none`` (on no layer), ``any`` (on some layer), a list of layers
        (names or indices in ``layers``: raised on each), or a bound on the number of layers. Transient flags (the
        initial weights settling) do not count.
    status : str, list or None, default=None
        How the run must end: completed, early_stopped, finished (either), nonfinite.
    claim : str or None, default=None
        The claim the expectations stand for, as a teacher says it; shown with the verdicts.
    """

    def __init__(
        self,
        test=None,
        final=None,
        best=None,
        gap=None,
        weights=None,
        time=None,
        jitter=None,
        path=None,
        reaches=None,
        flags=None,
        status=None,
        claim=None,
    ):
        for family, value in (("test", test), ("final", final), ("best", best), ("gap", gap)):
            setattr(self, family, _bounds(family, value))
        for family, value in (("weights", weights), ("time", time), ("jitter", jitter), ("path", path)):
            setattr(self, family, _bounds(family, value))
        self.reaches = _reaches(reaches)
        self.flags = _flags(flags)
        self.status = _status(status)
        if claim is not None and not isinstance(claim, str):
            raise DnnError(f"expect.claim must be text. Received: {claim!r}", ("claim",))
        self.claim = claim


def _mapping(key: str, value) -> Mapping:
    if not isinstance(value, Mapping) or not value:
        raise DnnError(
            f"expect.{key} must map names to bounds, such as {{accuracy: '>= 0.9'}}. Received: {value!r}", (key,)
        )
    return value


def _bounds(family: str, value) -> dict | None:
    if value is None:
        return None
    out = {}
    for name, text in _mapping(family, value).items():
        try:
            out[str(name)] = parse_bound(text, f"expect.{family}.{name}").text()
        except DnnError as err:
            raise DnnError(err.message, (family, name)) from None
    return out


def _reaches(value) -> dict | None:
    if value is None:
        return None
    out = {}
    for name, text in _mapping("reaches", value).items():
        try:
            bound, epoch = parse_by_epoch(text, f"expect.reaches.{name}")
        except DnnError as err:
            raise DnnError(err.message, ("reaches", name)) from None
        out[str(name)] = f"{bound.text()} by epoch {epoch}"
    return out


def _flags(value):
    if value is None or value == "none":
        return value
    if not isinstance(value, Mapping) or not value:
        raise DnnError(
            "expect.flags must be none (no flag raised) or map flags to none, any, a list of layers or a bound,"
            f" such as {{vanishing: [dense, dense_1], exploding: none}}. Received: {value!r}",
            ("flags",),
        )
    out = {}
    for flag, spec in value.items():
        if flag not in FLAGS:
            raise DnnError(
                f"expect.flags: no flag {flag!r}.{suggest(flag, FLAGS)} Flags: {', '.join(FLAGS)}.", ("flags", flag)
            )
        if spec in LAYERS_WORDS:
            out[flag] = spec
        elif (
            isinstance(spec, list) and spec and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in spec)
        ):
            out[flag] = list(spec)
        else:
            try:
                out[flag] = parse_bound(spec, f"expect.flags.{flag}").text()
            except DnnError:
                raise DnnError(
                    f"expect.flags.{flag} must be none, any, a list of layers (names or indices) or a bound on the"
                    f" number of layers such as '>= 3'. Received: {spec!r}",
                    ("flags", flag),
                ) from None
    return out


def _status(value):
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item not in STATUSES:
            raise DnnError(
                f"expect.status must be one of {', '.join(STATUSES)} (or a list of them). Received: {item!r}."
                f"{suggest(str(item), STATUSES)}",
                ("status",),
            )
    return value


def _split_dotted(spec: Mapping) -> tuple[dict, dict]:
    """``test.accuracy: x`` as ``test: {accuracy: x}``; and where each item was written, for its error's key."""
    params = section_parameters(Expectations)
    nested: dict = {}
    written: dict = {}
    for key, value in spec.items():
        family, dot, name = str(key).partition(".")
        if family == "epochs_to":
            raise DnnError(
                f"expect has no key {key!r}: in a config, the epoch a value is reached by is written"
                f" reaches: {{{name or 'val_accuracy'}: '>= 0.9 by epoch 10'}}.",
                (key,),
            )
        if not dot:
            if key in nested:
                raise DnnError(f"expect.{key} is given twice (also as dotted keys); keep one.", (key,))
            nested[key] = value
            continue
        if family not in params or family in ("reaches", "flags", "status", "claim"):
            raise DnnError(f"expect has no key {key!r}.{suggest(family, params)} Keys: {', '.join(params)}.", (key,))
        if family in nested and not any(w == family for w, _ in written):
            raise DnnError(f"expect.{family} is given twice (also as {key}); keep one.", (key,))
        nested.setdefault(family, {})[name] = value
        written[(family, name)] = key
    return nested, written


def resolve_expect(spec, columns: list[str], metrics: list[str], layers: list[str]) -> dict:
    """The ``expect:`` mapping checked and in its canonical form (nested, bounds spelled ``>= 0.9``): only the keys
    given. ``columns``: what the run logs; ``metrics``: its metrics; ``layers``: its layers' names, in order."""
    if not isinstance(spec, Mapping) or not spec:
        raise DnnError(
            f"expect must be a mapping of measures to bounds, such as {{test.accuracy: '>= 0.9'}}. Received: {spec!r}"
        )
    nested, written = _split_dotted(spec)

    def where(family, name=None) -> tuple:
        return (
            (written[(family, name)],) if (family, name) in written else (family,) + (() if name is None else (name,))
        )

    params = section_parameters(Expectations)
    for key in nested:
        if key not in params:
            raise DnnError(f"expect has no key {key!r}.{suggest(key, params)} Keys: {', '.join(params)}.", (key,))
    try:
        section = Expectations(**nested)
    except DnnError as err:
        raise DnnError(err.message, where(*err.key[:2]) if err.key else ()) from None
    out = {}
    for family in params:
        value = getattr(section, family)
        if value is None:
            continue
        out[family] = value
        if family in FAMILIES and family != "flags":  # flags: layers, not a measure's names
            for name in value:
                try:
                    parse_measure(f"{family}.{name}", columns, metrics)
                except DnnError as err:
                    raise DnnError(err.message, where(family, name)) from None
        elif family == "reaches":
            for name in value:
                if name not in columns:
                    raise DnnError(
                        f"expect.reaches: {name!r} is not logged by this run.{suggest(name, columns)}"
                        f" Logged: {', '.join(columns)}.",
                        ("reaches", name),
                    )
        elif family == "flags" and isinstance(value, dict):
            for flag, spec_ in value.items():
                for layer in spec_ if isinstance(spec_, list) else ():
                    if isinstance(layer, int) and not 0 <= layer < len(layers):
                        raise DnnError(
                            f"layer {layer} is not one of the model's layers (0..{len(layers) - 1}).",
                            ("flags", flag),
                        )
                    if isinstance(layer, str) and layer not in layers:
                        raise DnnError(
                            f"the model has no layer {layer!r}.{suggest(layer, layers)} Layers: {', '.join(layers)}.",
                            ("flags", flag),
                        )
    return out
