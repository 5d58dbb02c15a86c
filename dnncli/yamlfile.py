"""The one YAML reader of the package: a config, a sweep file, a model spec, a ``--set`` value.

YAML 1.2's floats (``1e-3`` is a number), a key given twice refused, and a document larger than ``MAX_BYTES``, not
UTF-8, nested deeper than ``MAX_DEPTH`` or whose aliases expand past ``MAX_NODES`` refused before it is composed.
A file is read once (a named pipe has no second reading).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dnncli.errors import DnnError

MAX_BYTES = 4 << 20  # a config larger than this is refused before it is parsed
MAX_DEPTH = 100  # nesting levels
MAX_NODES = 100_000  # nodes the document stands for once every alias is expanded


class Loader(yaml.SafeLoader):
    """YAML with 1.2's floats: ``1e-3`` is a number (PyYAML's 1.1 rules read it as a string); a key given twice in
    one mapping is an error (PyYAML lets the last win, silently). A key a merge (``<<: *base``) brings may be
    given again: that is what merging is for."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"the key {key_node.value!r} appears twice in one mapping (first on line {seen[key]});"
                        " the last would silently win, so keep one",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str):
    return yaml.load(text, Loader=Loader)


def read_config_file(path) -> tuple[dict, dict]:
    """Parse a YAML config; return (mapping, {key path: line number})."""
    mapping, lines, _ = read_yaml(path)
    return mapping, lines


def read_yaml(path) -> tuple[dict, dict, str]:
    """(mapping, {key path: line number}, text) of a YAML config, the file read once (a named pipe or
    ``<(...)`` has no second reading).

    A file larger than ``MAX_BYTES``, not UTF-8, nested deeper than ``MAX_DEPTH``, or whose aliases expand
    to more than ``MAX_NODES`` nodes (a "billion laughs" document of a few hundred bytes) is refused, with
    the limit and the place, before anything is composed, copied or walked.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)  # a pipe has no size to ask for beforehand
        if len(data) > MAX_BYTES:
            raise DnnError(f"{path}: over {MAX_BYTES >> 20} MiB; a config may be {MAX_BYTES >> 20} MiB at most.")
    except FileNotFoundError:
        raise DnnError(f"{path}: no such config file.") from None
    except IsADirectoryError:
        raise DnnError(f"{path}: a directory, not a config file.") from None
    except OSError as err:
        raise DnnError(f"{path}: cannot read ({err.strerror}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DnnError(
            f"{path}: not UTF-8 text: byte {err.start} (0x{data[err.start]:02x}) cannot be decoded;"
            " save the file as UTF-8."
        ) from None
    try:
        check_size(text, path)
        node = yaml.compose(text, Loader=Loader)
        mapping = parse_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise DnnError(f"{where}: not valid YAML: {problem}.") from None
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise DnnError(f"{path}: a config must be a YAML mapping (key: value lines).")
    lines: dict[tuple, int] = {}
    _walk(node, (), lines)
    return mapping, lines, text


def check_size(text: str, path) -> None:
    """Count nesting and alias-expanded nodes from the parser's events: one pass, no recursion, no expansion."""
    anchors: dict[str, int] = {}  # anchor -> nodes its value stands for
    stack: list[list] = [[0, None]]  # per open collection: [nodes so far, its anchor]
    total = 0  # every value once: a collection's own count is already in it, and goes to its parent only
    for event in yaml.parse(text, Loader=Loader):
        line = event.start_mark.line + 1
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([1, event.anchor])
            total += 1
            if len(stack) - 1 > MAX_DEPTH:
                raise DnnError(f"{path}:{line}: nested deeper than {MAX_DEPTH} levels; a config is a few levels deep.")
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            count, anchor = stack.pop()
            if anchor is not None:
                anchors[anchor] = count
            stack[-1][0] += count
            continue
        if isinstance(event, yaml.ScalarEvent):
            count = 1
            if event.anchor is not None:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            count = anchors.get(event.anchor, 1)
        else:
            continue
        stack[-1][0] += count
        total += count
        if stack[-1][0] > MAX_NODES or total > MAX_NODES:
            if not anchors:
                raise DnnError(f"{path}:{line}: more than {MAX_NODES:,} values; a config holds its settings, not data.")
            raise DnnError(
                f"{path}:{line}: the document expands to more than {MAX_NODES:,} values"
                f"{f' (at *{event.anchor})' if isinstance(event, yaml.AliasEvent) else ''};"
                " aliases may share a value, not multiply it without bound."
            )


def _walk(node, path: tuple, lines: dict) -> None:
    if node is None:
        return
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            _walk(value, (*path, k), lines)
            lines[(*path, k)] = key.start_mark.line + 1  # the key's line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)
