"""What each argument of a constructor accepts, as JSON Schema, read from the checks the tool runs on it.

The tool declares an argument once: in the signature of the class a registry builds (its name and default) and in
the check its constructor runs on the value (``check_int(units, "dense.units")``, ``check_choice(mode, ..., MODES)``,
``initializers.get(kernel_initializer, ...)``). This module reads both, the check from the constructor's source, and
turns each check into the JSON Schema that says the same (``check_int`` with its bounds into an integer with
``minimum`` and ``maximum``, a registry's ``get`` into a reference to that registry's definition). A helper called on
the value (``check_scale``) is read in turn. An argument no check names falls back to its annotation; a bound that
depends on another argument (``random_uniform.maxval >= minval``) is left to the tool, and its description says so.
Descriptions come from the class's numpydoc ``Parameters`` (those of its bases too), else from the check itself.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from dnncli import errors

CHECKS = {
    "check_int": errors.check_int,
    "check_float": errors.check_float,
    "check_bool": errors.check_bool,
    "check_choice": errors.check_choice,
}
DEPTH = 3  # helpers read in turn: check_scale -> check_float


@dataclass
class Argument:
    """One argument: its schema, whether it must be given, its default and a one-line description."""

    name: str
    schema: dict
    required: bool
    default: object = None
    description: str = ""
    notes: list[str] = field(default_factory=list)  # what is left to the tool


def _jsonable(value):
    if isinstance(value, tuple):
        value = list(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return None


def _source_tree(fn) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None


def _evaluate(node: ast.AST, scope: dict):
    """The value of an argument written in the tool's source (a constant, a module constant); raises otherwise."""
    return eval(compile(ast.Expression(node), "<check>", "eval"), dict(scope), {})  # our own source, read back


def _from_check(fn: Callable, call: ast.Call, scope: dict, notes: list) -> dict | None:
    """The schema of ``check_X(value, name, ...)``; ``None`` where a bound cannot be read (another argument)."""
    args, kwargs, dynamic = [], {}, []
    for i, node in enumerate(call.args[2:]):
        try:
            args.append(_evaluate(node, scope))
        except Exception:
            args.append(None)
            dynamic.append((list(inspect.signature(fn).parameters)[i + 2], node))
    for kw in call.keywords:
        try:
            kwargs[kw.arg] = _evaluate(kw.value, scope)
        except Exception:
            kwargs[kw.arg] = None
            dynamic.append((kw.arg, kw.value))
    bound = inspect.signature(fn).bind_partial(None, "", *args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    for name, node in dynamic:
        side = "at least" if name in ("low", "minimum") else "at most"
        notes.append(f"{side} {ast.unparse(node).removeprefix('self.')} (checked by dnn)")
    if fn is errors.check_int:
        out = {"type": "integer"}
        if a["minimum"] is not None:
            out["minimum"] = a["minimum"]
        out["maximum"] = a["maximum"]
        return out
    if fn is errors.check_float:
        out = {"type": "number"}
        if a["low"] is not None:
            out["exclusiveMinimum" if a["low_open"] else "minimum"] = a["low"]
        if a["high"] is not None:
            out["exclusiveMaximum" if a["high_open"] else "maximum"] = a["high"]
        return out
    if fn is errors.check_bool:
        return {"type": "boolean"}
    return {"enum": list(a["choices"])}


class _Reader:
    """Walks one function's source for the checks run on its arguments (``targets``: argument -> its names there)."""

    def __init__(self, fn: Callable, targets: dict[str, list[str]], refs: Callable, depth: int = 0):
        self.fn, self.targets, self.refs, self.depth = fn, targets, refs, depth
        closure = inspect.getclosurevars(fn) if inspect.isfunction(fn) else None
        self.scope = {**getattr(fn, "__globals__", {}), **(closure.nonlocals if closure else {})}
        self.found: dict[str, list[dict]] = {}
        self.notes: dict[str, list[str]] = {}
        self.defaults: dict[str, object] = {}

    def read(self) -> _Reader:
        tree = _source_tree(self.fn)
        if tree is None:
            return self
        aliases = self._aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                first = node.args[0]
                for name in self._names(first, aliases):
                    self._call(node, name, items=False)
                if isinstance(first, ast.Name) and first.id in aliases.get("items", {}):
                    self._call(node, aliases["items"][first.id], items=True)
        return self

    def _aliases(self, tree) -> dict:
        """Loop variables that stand for arguments: ``for name, value in (("a", a), ...)`` and ``[f(v) for v in a]``."""
        out: dict = {"loop": {}, "items": {}}
        for node in ast.walk(tree):
            literal_loop = isinstance(node, ast.For) and isinstance(node.iter, (ast.Tuple, ast.List))
            if literal_loop and isinstance(node.target, ast.Tuple):
                for pos, var in enumerate(node.target.elts):
                    if isinstance(var, ast.Name):
                        names = [
                            e.elts[pos].id
                            for e in node.iter.elts
                            if isinstance(e, ast.Tuple) and isinstance(e.elts[pos], ast.Name)
                        ]
                        out["loop"][var.id] = [n for n in names if n in self.targets]
            over_argument = isinstance(node, ast.comprehension) and isinstance(node.iter, ast.Name)
            if over_argument and node.iter.id in self.targets and isinstance(node.target, ast.Name):
                out["items"][node.target.id] = node.iter.id
        return out

    def _names(self, node, aliases) -> list[str]:
        if isinstance(node, ast.Name):
            if node.id in self.targets:
                return [node.id]
            return aliases["loop"].get(node.id, [])
        # a key read from a mapping, ``raw.get("trials", 10)``: the key is the argument, the default its default
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            key = node.args[0] if node.args else None
            if isinstance(key, ast.Constant) and key.value in self.targets:
                if len(node.args) > 1:
                    with contextlib.suppress(ValueError):
                        self.defaults[key.value] = ast.literal_eval(node.args[1])
                return [key.value]
        return []

    def _call(self, call: ast.Call, name: str, items: bool) -> None:
        notes = self.notes.setdefault(name, [])
        schema = self._schema_of(call, notes)
        if schema is None:
            return
        if items:
            schema = {"type": "array", "items": schema}
        if schema not in self.found.setdefault(name, []):
            self.found[name].append(schema)

    def _schema_of(self, call: ast.Call, notes: list) -> dict | None:
        func = call.func
        if isinstance(func, ast.Name) and func.id in CHECKS:
            return _from_check(CHECKS[func.id], call, self.scope, notes)
        if isinstance(func, ast.Attribute) and func.attr == "get":  # a registry: activations.get(spec, key)
            try:
                owner = _evaluate(func.value, self.scope)
            except Exception:
                return None
            ref = self.refs(owner)
            return None if ref is None else {"$ref": ref}
        if self.depth >= DEPTH:
            return None
        helper = None
        if isinstance(func, ast.Name):
            helper = self.scope.get(func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            helper = self.scope.get("__helpers__", {}).get(func.attr)
        if not inspect.isfunction(helper) or not helper.__module__.startswith("dnncli"):
            return None
        params = [p for p in inspect.signature(helper).parameters if p != "self"]
        if not params:
            return None
        inner = _Reader(helper, {params[0]: [params[0]]}, self.refs, self.depth + 1)
        inner.scope.setdefault("__helpers__", self.scope.get("__helpers__", {}))
        found = inner.read().found.get(params[0], [])
        notes += inner.notes.get(params[0], [])
        if not found:
            return None
        return found[0] if len(found) == 1 else {"anyOf": found}


def read_checks(fn: Callable, keys, refs: Callable = lambda owner: None) -> tuple[dict, dict]:
    """The checks ``fn`` runs on the values of ``keys`` (its arguments, or ``mapping.get("key", default)``): each key's
    schema (one check, or ``anyOf`` several) and the defaults the ``get`` calls give."""
    reader = _Reader(fn, {k: [k] for k in keys}, refs).read()
    out = {k: v[0] if len(v) == 1 else {"anyOf": v} for k, v in reader.found.items()}
    return out, reader.defaults


def _annotation_schema(annotation) -> dict:
    """An argument no check names: its annotation, read as JSON types (``str | None``: a string or null)."""
    types = {"int": "integer", "float": "number", "bool": "boolean", "str": "string", "list": "array"}
    types |= {"dict": "object", "None": "null"}
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    parts = [types.get(re.sub(r"\[.*", "", p.strip())) for p in text.split("|")] if text else []
    if not parts or None in parts:
        return {}
    return {"type": parts[0] if len(parts) == 1 else parts}


def parameter_docs(cls) -> dict[str, str]:
    """The first sentence of each argument's numpydoc entry, from ``cls`` and its bases."""
    return {name: sentence for name, (_, sentence) in _numpydoc(cls).items()}


def _numpydoc(cls) -> dict[str, tuple[str, str]]:
    """Each argument's numpydoc entry: (its type line, the first sentence of its description)."""
    out: dict[str, tuple[str, str]] = {}
    for klass in inspect.getmro(cls) if inspect.isclass(cls) else [cls]:
        doc = inspect.cleandoc(klass.__doc__ or "")
        if "Parameters\n----------" not in doc:
            continue
        body = doc.split("Parameters\n----------", 1)[1]
        body = re.split(r"\n\S[^\n]*\n-{3,}", body)[0]
        for head, text in re.findall(r"^(\S[^\n]*)\n((?:[ \t]+[^\n]*\n?)*)", body, flags=re.M):
            names, _, kind = head.partition(" : ")
            line = " ".join(text.split()).replace("``", "`")
            sentence = re.split(r"(?<=\.)\s", line, maxsplit=1)[0].rstrip(".") if line else ""
            for name in (n.strip() for n in names.split(",")):
                if sentence:
                    out.setdefault(name, (kind, sentence))
    return out


def _doc_type_schema(kind: str) -> dict:
    """An argument neither a check nor an annotation types: its numpydoc type (``mapping or None``)."""
    kind = re.sub(r",?\s*default=.*", "", kind)
    words = {"mapping": "object", "dict": "object", "str": "string", "int": "integer", "float": "number"}
    words |= {"bool": "boolean", "list": "array", "None": "null"}
    types, enum = [], []
    for part in re.split(r",\s*|\s+or\s+", kind):
        part = part.strip()
        if part.startswith("{"):
            enum += [v.strip().strip("\"'") for v in part.strip("{}").split(",")]
        elif re.fullmatch(r'"[^"]*"', part):
            enum.append(part.strip('"'))
        elif part in words:
            types.append(words[part])
        elif part:
            return {}
    if enum and not types:
        return {"enum": enum}
    if not types:
        return {}
    schema = {"type": types[0] if len(types) == 1 else types}
    return {"anyOf": [{"enum": enum}, schema]} if enum else schema


def _initializers(cls) -> list[Callable]:
    """The constructors an object's arguments pass through, as ``registry.constructor_parameters`` walks them."""
    out = []
    for klass in inspect.getmro(cls) if inspect.isclass(cls) else [None]:
        init = cls if klass is None else klass.__dict__.get("__init__")
        if init is None:
            continue
        out.append(init)
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
            break
    return out


def _class_checks(cls, names, refs) -> dict[str, list[dict]]:
    """Checks a class keeps in a table of its own, ``{"classes": lambda v: check_int(v, ...)}``."""
    out: dict[str, list[dict]] = {}
    for klass in inspect.getmro(cls) if inspect.isclass(cls) else []:
        table = {k: v for k, v in vars(klass).items() if isinstance(v, dict)}
        for value in table.values():
            for key, fn in value.items():
                if key in names and inspect.isfunction(fn) and fn.__name__ == "<lambda>":
                    source = inspect.getsource(fn).strip().rstrip(",")
                    call = ast.parse(source.split(":", 1)[1].strip() if source.startswith('"') else source).body[0]
                    node = call.value if isinstance(call, ast.Expr) else None
                    if isinstance(node, ast.Lambda) and isinstance(node.body, ast.Call):
                        name = node.body.func.id if isinstance(node.body.func, ast.Name) else ""
                        if name in CHECKS:
                            out.setdefault(key, []).append(_from_check(CHECKS[name], node.body, fn.__globals__, []))
    return out


def arguments(cls, params: dict[str, inspect.Parameter], refs: Callable) -> dict[str, Argument]:
    """Each argument of ``cls`` (``params``, as its registry reads them): its schema, default and description.

    ``refs(owner)``: the ``$ref`` of the registry module ``owner`` (whose ``get`` builds an argument), or None.
    """
    found: dict[str, list[dict]] = {}
    notes: dict[str, list[str]] = {}
    helpers = {k: v for klass in reversed(inspect.getmro(cls)) for k, v in vars(klass).items() if inspect.isfunction(v)}
    for init in _initializers(cls):
        reader = _Reader(init, {n: [n] for n in params}, refs)
        reader.scope["__helpers__"] = helpers
        reader.read()
        for name, schemas in reader.found.items():
            found.setdefault(name, [])
            found[name] += [s for s in schemas if s not in found[name]]
        for name, more in reader.notes.items():
            notes.setdefault(name, []).extend(m for m in more if m not in notes.get(name, []))
    for name, schemas in _class_checks(cls, params, refs).items():
        found.setdefault(name, []).extend(s for s in schemas if s not in found.get(name, []))
    docs = _numpydoc(cls)
    out = {}
    for name, p in params.items():
        schemas = found.get(name) or [_annotation_schema(p.annotation)]
        if schemas == [{}] and name in docs:
            schemas = [_doc_type_schema(docs[name][0])]
        required = p.default is p.empty
        schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        default = None if required else _jsonable(p.default)
        if not required and p.default is None and schema:
            schema = nullable(schema)
        said = docs.get(name, ("", ""))[1]
        out[name] = Argument(name, schema, required, default, said, notes.get(name, []))
    return out


def nullable(schema: dict) -> dict:
    """``schema``, or null."""
    if not schema:
        return schema
    if schema.get("type") and set(schema) <= {"type"}:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return {"type": [*kinds, "null"] if "null" not in kinds else kinds}
    if "anyOf" in schema and len(schema) == 1:
        if any(b.get("type") == "null" or "null" in (b.get("type") or []) for b in schema["anyOf"]):
            return schema
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}
