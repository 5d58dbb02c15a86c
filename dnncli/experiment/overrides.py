"""The ``--set key.path=value`` language: values parsed as YAML, list items by index, ``*`` for every item."""

from __future__ import annotations

import yaml

from dnncli.errors import DnnError, suggest
from dnncli.yamlfile import check_size, parse_yaml


def apply_overrides(mapping: dict, overrides: list[str], touched: list | None = None) -> dict:
    """Apply ``key.path=value`` overrides, in order (value parsed as YAML; list items by index).

    A ``*`` part stands for every item of a list (or every key of a mapping):
    ``model.layers.*.activation=relu`` sets the activation of every layer that
    has one, and leaves the others alone. A pattern that matches nothing is an error.
    ``touched`` collects the key paths that were set (indices as numbers).
    """
    # a plain copy: YAML anchors make one object of several places, and an override of one place must not
    # change the others (copy.deepcopy would keep them shared)
    mapping = plain_copy(mapping)
    touched = [] if touched is None else touched
    for item in overrides or []:
        if "=" not in item:
            raise DnnError(f"--set needs key.path=value. Received: {item!r}")
        dotted, text = item.split("=", 1)
        dotted = dotted.strip()
        parts = dotted.split(".")
        if not all(parts):
            raise DnnError(f"--set: bad key path {dotted!r}.")
        try:
            check_size(text, f"--set {dotted}")
            value = parse_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            raise DnnError(f"--set {dotted}: the value {text!r} is not valid YAML.") from None
        if _assign(mapping, parts, value, touched) == 0:
            star = parts.index("*")
            raise DnnError(f"--set {dotted}: matches nothing: {_why_nothing(mapping, parts, star)}")
    return mapping


def plain_copy(value):
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    return value


def _assign(
    target, parts: list[str], value, touched: list, *, depth: int = 0, strict: bool = True, path: tuple = ()
) -> int:
    """Set ``parts[depth:]`` below ``target`` (at key path ``path``); return how many places were set.

    ``strict`` (no ``*`` seen yet): missing mappings are created and a bad index is an error.
    Below a ``*``: only paths that exist are set.
    """
    part, last = parts[depth], depth == len(parts) - 1
    if part == "*":
        if not isinstance(target, (dict, list)):
            if strict:
                raise DnnError(f"--set {'.'.join(parts)}: {'.'.join(parts[:depth])} is not a mapping or list.")
            return 0
        count = 0
        for key in range(len(target)) if isinstance(target, list) else list(target):
            if last:
                target[key] = plain_copy(value)
                touched.append((*path, key))
                count += 1
            elif isinstance(target[key], (dict, list)):
                count += _assign(target[key], parts, value, touched, depth=depth + 1, strict=False, path=(*path, key))
        return count
    if strict:
        key = _index(target, part, parts[: depth + 1])
        if last:
            target[key] = value
            touched.append((*path, key))
            return 1
        if parts[depth + 1] == "*" and isinstance(target, dict) and key not in target:
            raise DnnError(
                f"--set {'.'.join(parts)}: {'.'.join(parts[: depth + 1])} does not exist.{suggest(key, target)}"
            )
        child = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        if not isinstance(child, (dict, list)):
            raise DnnError(f"--set {'.'.join(parts)}: {'.'.join(parts[: depth + 1])} is not a mapping or list.")
        return _assign(child, parts, value, touched, depth=depth + 1, strict=True, path=(*path, key))
    if isinstance(target, dict) and part in target:
        key = part
    elif isinstance(target, list) and part.lstrip("-").isdigit() and -len(target) <= int(part) < len(target):
        key = int(part) % len(target)
    else:
        return 0
    if last:
        target[key] = plain_copy(value)
        touched.append((*path, key))
        return 1
    child = target[key]
    if not isinstance(child, (dict, list)):
        return 0
    return _assign(child, parts, value, touched, depth=depth + 1, strict=False, path=(*path, key))


def _why_nothing(mapping, parts: list[str], star: int) -> str:
    """Why a ``*`` pattern set nothing: no item has the key (a near name?), or it is no mapping where one is needed."""
    node = mapping
    for part in parts[:star]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    items = node if isinstance(node, list) else list(node.values()) if isinstance(node, dict) else []
    where = ".".join(parts[:star]) or "the config"
    if star + 1 >= len(parts):
        return f"{where} is empty."
    key = parts[star + 1]
    having = [item[key] for item in items if isinstance(item, dict) and key in item]
    if having and star + 2 < len(parts):
        sample = next((h for h in having if not isinstance(h, (dict, list))), having[0])
        return (
            f"in the items of {where}, {key!r} is {sample!r}, not a mapping with {parts[star + 2]!r};"
            f" set it whole: --set {'.'.join(parts[: star + 2])}=VALUE."
        )
    keys = {k for item in items if isinstance(item, dict) for k in item}
    return f"no item of {where} has {'.'.join(parts[star + 1 :])!r}.{suggest(key, keys)}"


def _index(target, part: str, parts: list[str]):
    if isinstance(target, list):
        if not part.lstrip("-").isdigit() or not -len(target) <= int(part) < len(target):
            raise DnnError(f"--set {'.'.join(parts)}: {part!r} is not an index of a list of {len(target)}.")
        return int(part) % len(target)
    return part
