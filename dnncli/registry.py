"""Name -> class registries, in the manner of scikit-learn's ``ACTIVATIONS``.

A spec is a name (``"adam"``), a mapping with the name under ``key_field``
(``{"name": "adam", "learning_rate": 0.01}``), or an instance already built.
Unknown names and unknown arguments are rejected with the nearest valid one
suggested; arguments are never silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

from dnncli.errors import DnnError, suggest


class Registry:
    """Build objects of one kind (activation, loss, ...) from specs.

    Parameters
    ----------
    kind : str
        What the objects are, for messages ("optimizer").
    entries : dict of str to callable
        Canonical name -> class.
    aliases : dict of str to str, default=None
        Extra names -> canonical name (Keras's ``mse`` for ``mean_squared_error``).
    key_field : str, default="name"
        The mapping key that holds the name.
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, Callable],
        aliases: Mapping[str, str] | None = None,
        key_field: str = "name",
    ):
        self.kind = kind
        self.entries = dict(entries)
        self.aliases = dict(aliases or {})
        self.key_field = key_field
        self.base = None  # instances of this type pass through get() unchanged

    def names(self) -> list[str]:
        """Every accepted name, canonical names first."""
        return list(self.entries) + list(self.aliases)

    def canonical(self, name) -> str:
        """Return the canonical name for ``name`` or raise with a suggestion."""
        if isinstance(name, str):
            name = self.aliases.get(name, name)
            if name in self.entries:
                return name
        raise DnnError(
            f"Unknown {self.kind} {name!r}.{suggest(name, self.names())} Known: {', '.join(self.entries)}.",
            (self.key_field,),
        )

    def split(self, spec) -> tuple[str, dict]:
        """Return ``(canonical name, arguments)`` of a name or mapping spec."""
        if isinstance(spec, str):
            return self.canonical(spec), {}
        if isinstance(spec, Mapping):
            if self.key_field not in spec:
                raise DnnError(
                    f"{'An' if self.kind[0] in 'aeiou' else 'A'} {self.kind} spec needs a '{self.key_field}' key."
                    f" Received: {dict(spec)}",
                    (self.key_field,),
                )
            args = {k: v for k, v in spec.items() if k != self.key_field}
            return self.canonical(spec[self.key_field]), args
        raise DnnError(f"A {self.kind} must be a name or a mapping with '{self.key_field}'. Received: {spec!r}")

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The constructor arguments of ``name`` (canonical), by name (see ``constructor_parameters``)."""
        return constructor_parameters(self.entries[name])

    def defaults(self, name: str) -> dict:
        """The declared default of every argument of ``name`` that has one."""
        return {k: p.default for k, p in self.parameters(name).items() if p.default is not p.empty}

    def get(self, spec, key: tuple | str = ()):
        """Build an object from ``spec``.

        Parameters
        ----------
        spec : str, mapping or instance
            What to build.
        key : tuple or str, default=()
            Where the spec sits in its config, prefixed to the key of any error.
        """
        prefix = (key,) if isinstance(key, str) else tuple(key)
        if self.base is not None and isinstance(spec, self.base):
            return spec
        try:
            name, args = self.split(spec)
            check_arguments(f"{self.kind} '{name}'", self.parameters(name), args)
            return self.entries[name](**args)
        except DnnError as err:
            raise err.at(*prefix) from None


def check_arguments(what: str, params: Mapping[str, inspect.Parameter], args: Mapping) -> None:
    """Refuse an argument ``params`` does not declare (suggesting the nearest), and a required one missing."""
    for arg in args:
        if arg not in params:
            raise DnnError(
                f"{what} has no argument {arg!r}.{suggest(arg, params)} Arguments: {', '.join(params) or 'none'}.",
                (arg,),
            )
    missing = [k for k, p in params.items() if p.default is p.empty and k not in args]
    if missing:
        raise DnnError(f"{what} needs {', '.join(map(repr, missing))}.", (missing[0],))


def section_parameters(cls) -> dict[str, inspect.Parameter]:
    """The keys of a config section: the arguments of ``cls``'s constructor, with their declared defaults."""
    return {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}


def build_section(cls, spec, name: str):
    """Build a config section (``training``, ``monitor``, ``data.augment``) from its mapping.

    The one schema mechanism, as for named objects: ``cls``'s constructor declares each key and its default
    and checks its value; a key it does not declare is refused with the nearest suggested. Errors carry the
    key path below the section.
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise DnnError(f"{name} must be a mapping. Received: {spec!r}")
    params = section_parameters(cls)
    for key in spec:
        if key not in params:
            raise DnnError(f"{name} has no key {key!r}.{suggest(key, params)}", (key,))
    return cls(**spec)


def section_config(obj) -> dict:
    """A section's resolved mapping: every key, defaults filled in."""
    return {k: getattr(obj, k) for k in section_parameters(type(obj))}


def constructor_parameters(entry) -> dict[str, inspect.Parameter]:
    """The arguments of a class's constructor (or of a function), by name.

    A constructor that passes ``**kwargs`` on to its base class (as the
    optimizers pass clipping options) accepts the base's arguments too.
    """
    params: dict[str, inspect.Parameter] = {}
    for klass in inspect.getmro(entry) if inspect.isclass(entry) else [None]:
        init = entry if klass is None else klass.__dict__.get("__init__")
        if init is None:
            continue
        more = False
        for k, p in inspect.signature(init).parameters.items():
            if p.kind is p.VAR_KEYWORD:
                more = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k != "self":
                params.setdefault(k, p)
        if not more:
            break
    return params
