"""The dotted keys of a config and the names each takes, read from the shipped JSON Schema (for ``--set`` completion).

A key's place in the schema is followed with the config's own values: a list of layers gives its indices, a layer's
``type`` (an optimizer's ``name``, a data ``source``) chooses its branch, so ``model.layers.3.`` offers the keys of
that layer's type and ``model.layers.3.activation=`` the activations. Only the standard library and the schema file:
a completion answers in a fresh process, without NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping

_NO_VALUE = object()


def _deref(schema: dict, root: dict) -> dict:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {})
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **extra}
        seen += 1
    return schema if isinstance(schema, dict) else {}


def _matches(test: dict, value) -> bool:
    """Whether a branch's ``if`` holds for ``value``: a JSON type, or an enum or const on a discriminating key,
    perhaps required."""
    if test.get("type") == "string":
        return isinstance(value, str)
    if not isinstance(value, Mapping):
        return False
    for key in test.get("required", ()):
        if key not in value:
            return False
    for key, cond in test.get("properties", {}).items():
        if key in value:
            allowed = cond.get("enum", [cond["const"]] if "const" in cond else None)
            if allowed is not None and value[key] not in allowed:
                return False
    return True


def branches(schema: dict, value, root: dict) -> list[dict]:
    """The schemas that apply to ``value`` at this place: ``$ref`` followed, ``anyOf`` and ``if``/``then`` opened
    (a mapping's branch not for a value written as a name: ``activation: relu`` has no keys below it)."""
    schema = _deref(schema, root)
    out = [schema]
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []):
        alt = _deref(alt, root)
        kinds = alt.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
        if value is not _NO_VALUE and kinds:  # a branch of another kind than the value's: not this one
            if set(kinds) <= {"object", "null"} and not isinstance(value, Mapping):
                continue
            if isinstance(value, Mapping) and "object" not in kinds:
                continue
            if isinstance(value, list) and "array" not in kinds:
                continue
        out += branches(alt, value, root)
    if "if" in schema:  # a name or a mapping: by the value written (nothing yet: the mapping, to go on)
        chosen = schema.get("then") if _matches(schema["if"], value) else schema.get("else")
        if isinstance(chosen, dict):
            out += branches(chosen, value, root)
    for part in schema.get("allOf", []):
        if "if" in part:
            if _matches(part["if"], value) and "then" in part:
                out += branches(part["then"], value, root)
        else:
            out += branches(part, value, root)
    return out


def children(schema: dict, value, root: dict) -> dict[str, tuple[dict, object]]:
    """The keys below this place: a mapping's properties (as its branches for ``value`` declare them), a list's
    indices (and ``*``, every item); each with its schema and its value in the config."""
    out: dict[str, tuple[dict, object]] = {}
    for branch in branches(schema, value, root):
        for name, sub in branch.get("properties", {}).items():
            here = value.get(name, _NO_VALUE) if isinstance(value, Mapping) else _NO_VALUE
            if name in out:
                out[name] = ({"allOf": [out[name][0], sub]}, here)
            else:
                out[name] = (sub, here)
        if "items" in branch and isinstance(value, list):
            for i, item in enumerate(value):
                out.setdefault(str(i), (branch["items"], item))
            if value:
                out.setdefault("*", (branch["items"], value[0]))
    return out


def _flatten(schema: dict, root: dict) -> list[dict]:
    schema = _deref(schema, root)
    out = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for alt in schema.get(key, []):
            out += _flatten(alt, root)
    if isinstance(schema.get("then"), dict):  # the names a key takes written alone
        out += _flatten(schema["then"], root)
    return out


def names(schema: dict, root: dict) -> list[str]:
    """The names a key takes: its enums (registry names, aliases among them), ``true``/``false`` for a boolean."""
    out: list[str] = []
    for part in _flatten(schema, root):
        values = part.get("enum", [part["const"]] if "const" in part else [])
        kinds = part.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "boolean" in kinds:
            values = [*values, True, False]
        for v in values:
            text = "true" if v is True else "false" if v is False else "null" if v is None else str(v)
            if text not in out:
                out.append(text)
    return out


def has_children(schema: dict, value, root: dict) -> bool:
    return bool(children(schema, value, root))


def walk(root: dict, config, dotted: list[str]) -> tuple[dict, object] | None:
    """The schema and value at ``dotted`` (key parts), or None where the schema has no such key."""
    schema, value = root, config
    for part in dotted:
        below = children(schema, value, root)
        if part not in below:
            return None
        schema, value = below[part]
    return schema, value


def complete(root: dict, config, incomplete: str, limit: int = 200) -> list[str]:
    """Completions of ``--set`` for ``incomplete``: dotted keys (``model.layers.3.activation``), then, after ``=``,
    the names that key takes (``model.layers.3.activation=relu``). A key with keys below it is offered as them (a
    unique match opens), so a shell completes to the common prefix, as far as it is certain."""
    if "=" in incomplete:
        dotted, _, typed = incomplete.partition("=")
        found = walk(root, config, dotted.split("."))
        if found is None:
            return []
        return [f"{dotted}={n}" for n in names(found[0], root) if n.startswith(typed)][:limit]
    *head, partial = incomplete.split(".")
    found = walk(root, config, head)
    if found is None:
        return []
    prefix = ".".join(head) + "." if head else ""
    options = {k: v for k, v in children(*found, root).items() if k.startswith(partial)}
    if len(options) == 1:  # one key: what follows it
        ((key, (schema, value)),) = options.items()
        below = children(schema, value, root)
        if below:
            return [f"{prefix}{key}.{k}" for k in below][:limit]
        values = names(schema, root)
        return [f"{prefix}{key}={n}" for n in values][:limit] or [f"{prefix}{key}="]
    return [f"{prefix}{k}" for k in options][:limit]
