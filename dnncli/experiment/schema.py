"""The JSON Schema (draft 2020-12) of a config file and of a sweep file, generated from the registries the config
resolves through: never written by hand, so that it cannot drift from what ``dnn validate`` accepts.

Each registry (layers, activations, initializers, regularizers, losses, optimizers, schedules, callbacks, data
sources) gives a definition: its names (aliases included) as an ``enum``, and one branch per name, chosen by its
``type``, ``name`` or ``source`` key (``if``/``then``), with each argument's schema, default and description read
from the class (``arguments``) and ``additionalProperties: false``, as the registry refuses an unknown argument. The
config-only sections (``training``, ``monitor``, ``data.augment``) are their classes' signatures, read the same way.
What JSON Schema cannot say (a layer's shape against the one before it, the loss against the output layer, a
metric against the loss's targets) stays with the tool, and the descriptions say so.

``dnn schema`` prints it; the files ship in the package (``dnncli/schema/``) and in ``schema/`` of the repository.
"""

from __future__ import annotations

import json
import re

from dnncli.data import augment, sources, synthetic
from dnncli.diagnostics.settings import MonitorSettings
from dnncli.errors import MAX_INT
from dnncli.experiment.arguments import arguments
from dnncli.experiment.resolve import TOP_KEYS, TrainingSettings
from dnncli.nn import activations, initializers, layers, losses, optimizers, regularizers, schedules
from dnncli.nn.model import DTYPES
from dnncli.registry import constructor_parameters, section_parameters
from dnncli.train import callbacks, metrics

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# registry module -> its definition's name
REGISTRIES = {
    layers: "layer",
    activations: "activation",
    initializers: "initializer",
    regularizers: "regularizer",
    losses: "loss",
    optimizers: "optimizer",
    schedules: "schedule",
    callbacks: "callback",
    sources: "data",
}
TOOL_ONLY = (
    "Checked by dnn, not by this schema: each layer's shape against the one before it, the loss against the output"
    " layer, each metric against the loss's targets, class_names and class_weight against the classes, the data"
    " files themselves."
)


def _ref(module) -> str | None:
    name = REGISTRIES.get(module)
    return None if name is None else f"#/$defs/{name}"


def describe(schema: dict) -> str:
    """What a schema accepts, in the words of the tool's messages: ``an integer >= 1``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name} (a name, or a mapping with its arguments)"
    if "anyOf" in schema:
        return " or ".join(describe(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    kinds = schema.get("type", [])
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "a string"}
    words |= {"array": "a list", "object": "a mapping", "null": "null"}
    text = " or ".join(words[k] for k in kinds) or "any value"
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if high == MAX_INT:
        high = None
    if low is not None and high is not None:
        left = "(" if "exclusiveMinimum" in schema else "["
        right = ")" if "exclusiveMaximum" in schema else "]"
        text += f" in {left}{low}, {high}{right}"
    elif low is not None:
        text += f" {'>' if 'exclusiveMinimum' in schema else '>='} {low}"
    elif high is not None:
        text += f" {'<' if 'exclusiveMaximum' in schema else '<='} {high}"
    return text


def _properties(owner: str, args, docs_first: bool = True) -> tuple[dict, list[str]]:
    """The ``properties`` and ``required`` of a branch from its ``Argument``s."""
    props, required = {}, []
    for arg in args.values():
        schema = dict(arg.schema)
        said = describe(arg.schema)
        text = arg.description if arg.description and docs_first else f"{owner}.{arg.name}: {said}"
        if arg.description and docs_first and said != "any value":
            text += f" ({said})"
        if arg.required:
            text += "; required"
            required.append(arg.name)
        if arg.notes:
            text += "; " + "; ".join(arg.notes)
        schema["description"] = text
        if not arg.required:
            schema["default"] = arg.default
        props[arg.name] = schema
    return props, required


def _first_line(cls) -> str:
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


def _registry_defs(module, name: str, defs: dict, overrides: dict | None = None) -> None:
    """``defs[name]``: a spec of ``module``'s registry (a name where no argument is required, or a mapping), and one
    definition per entry, ``name.entry``, holding its arguments."""
    reg = module.REGISTRY
    key = reg.key_field
    overrides = overrides or {}
    bare = []
    branches = []
    for entry, cls in reg.entries.items():
        params = constructor_parameters(cls)
        args = arguments(cls, params, _ref)
        props, required = _properties(entry, args)
        for arg, schema in overrides.get(entry, {}).items():
            props[arg] = {**schema, "description": props[arg]["description"], "default": props[arg].get("default")}
        spelled = [entry, *[a for a, c in reg.aliases.items() if c == entry]]
        props = {key: {"enum": spelled, "description": f"The {reg.kind}."}, **props}
        defs[f"{name}.{entry}"] = {
            "type": "object",
            "description": f"{entry}: {_first_line(cls)}",
            "properties": props,
            "required": [key, *required] if key != "source" else required,
            "additionalProperties": False,
        }
        if not required:
            bare += spelled
        test = {"type": "object", "properties": {key: {"enum": spelled}}}
        if key != "source" or entry != "synthetic":  # data: no source is synthetic
            test["required"] = [key]
        branches.append({"if": test, "then": {"$ref": f"#/$defs/{name}.{entry}"}})
    names = reg.names()
    mapping = {
        "type": "object",
        "properties": {key: {"enum": names, "description": f"The {reg.kind}: {', '.join(names)}."}},
        "allOf": branches,
    }
    if key != "source":
        mapping["required"] = [key]
    # a name alone (where every argument has a default), else a mapping: if/then/else rather than anyOf, so that a
    # checker's error is the one of the form written (a typo in a mapping's key, not "is not one of the names")
    defs[name] = {
        "description": f"A {reg.kind}: "
        + (f"a name ({', '.join(bare)}) or " if bare else "")
        + f"a mapping with '{key}' ({', '.join(names)}) and its arguments.",
        "if": {"type": "string"},
        "then": {"enum": bare, "description": f"A {reg.kind} by its name, its arguments' defaults."} if bare else False,
        "else": mapping,
    }


def _section(cls, owner: str, overrides: dict | None = None) -> dict:
    """A config section (``training``, ``monitor``, ``data.augment``): its class's signature, its checks."""
    args = arguments(cls, section_parameters(cls), _ref)
    props, required = _properties(owner, args)
    for arg, schema in (overrides or {}).items():
        props[arg] = {**schema, "description": props[arg]["description"], "default": props[arg].get("default")}
    out = {
        "type": ["object", "null"],
        "description": _first_line(cls),
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def _insensitive(name: str) -> str:
    """A pattern for a metric's name as ``metrics.canonical_name`` reads it: any case, ``-`` or a space for ``_``,
    or a capital for it (the Keras class name ``TopKCategoricalAccuracy``)."""
    parts = name.split("_")
    letters = ["".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in p) for p in parts]
    return r"\s*" + r"(?:[_\s-]+|(?<=[a-z0-9])(?=[A-Z]))".join(letters) + r"\s*"


def _metrics() -> dict:
    names = [*metrics.METRICS, *metrics.ALIASES]
    spelled = "^(?:" + "|".join(_insensitive(n) for n in names) + ")$"
    one = {
        "anyOf": [{"enum": names}, {"type": "string", "pattern": spelled}],
        "description": "A metric: " + ", ".join(names) + " (in any case, or as Keras's class name: AUC, F1Score).",
    }
    return {
        "description": "Values logged besides the loss, each epoch (a name or a list of names). " + TOOL_ONLY,
        "anyOf": [{"type": "array", "items": one, "uniqueItems": True}, one, {"type": "null"}],
        "default": [],
    }


def _callbacks(defs: dict) -> dict:
    props = {}
    for entry in callbacks.REGISTRY.entries:
        branch = defs.pop(f"callback.{entry}")
        branch["properties"].pop("name")
        branch["required"] = [r for r in branch["required"] if r != "name"]
        if not branch["required"]:
            branch.pop("required")
        defs[f"callback.{entry}"] = branch
        props[entry] = {
            "description": f"{branch['description']} true: its defaults; false or null: off.",
            "anyOf": [{"type": ["boolean", "null"]}, {"$ref": f"#/$defs/callback.{entry}"}],
        }
    defs.pop("callback")
    return {
        "type": ["object", "null"],
        "description": "Each key enables one callback: a mapping of its arguments, or true for its defaults.",
        "properties": props,
        "additionalProperties": False,
        "default": {},
    }


def _class_weight() -> dict:
    return {
        "anyOf": [
            {"const": "balanced"},
            {"type": "null"},
            {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "number", "minimum": 0},
                "description": "class (integer label or name) -> weight >= 0",
            },
        ]
    }


def _generators() -> list[dict]:
    """A synthetic generator's arguments: one it does not take must be absent or null (``data/synthetic.py``)."""
    options = [k for k in section_parameters(sources.SyntheticSource) if k in sources.SyntheticSource.CHECKS]
    out = []
    for name in synthetic.GENERATORS:
        takes = synthetic.arguments(name)
        absent = {k: {"type": "null"} for k in options if k not in takes}
        if absent:
            test = {"properties": {"generator": {"const": name}}}
            if name != "spirals":
                test["required"] = ["generator"]
            out.append({"if": test, "then": {"properties": absent}})
    return out


def _expect() -> dict:
    """The ``expect:`` section (``Expectations``): each measure family a mapping of names to bounds (a family may be
    written dotted, ``test.accuracy: ">= 0.9"``); the bounds and names themselves are checked by dnn."""
    from dnncli.experiment.expect.spec import Expectations

    section = _section(Expectations, "expect")
    bound = {"type": ["string", "number"], "description": "A bound: '>= 0.9', 'at most 0.5', ..."}
    dotted = []
    for key, schema in section["properties"].items():
        if schema.get("type") == ["object", "null"]:
            schema["additionalProperties"] = {**bound} if key != "reaches" else {"type": "string"}
            if key != "reaches":
                dotted.append(key)
    section["type"] = "object"
    section["minProperties"] = 1
    section["patternProperties"] = {rf"^({'|'.join(dotted)})\.": bound}
    return section


def config_schema() -> dict:
    """The JSON Schema of a config file."""
    defs: dict = {}
    for module, name in REGISTRIES.items():
        _registry_defs(module, name, defs)
    for name in ("activation", "regularizer", "data"):  # their get() takes None: linear, no penalty, spirals
        defs[name]["else"]["type"] = ["object", "null"]
    factors = {k: v for k, v in defs["regularizer.l1_l2"]["properties"].items() if k != "name"}
    keras = {
        "type": "object",
        "description": "Keras's spelling by the factors alone: {l2: 0.01} is L2(0.01), {l1: .., l2: ..} L1L2.",
        "properties": factors,
        "minProperties": 1,
        "additionalProperties": False,
    }
    defs["regularizer"]["else"] = {"anyOf": [defs["regularizer"]["else"], keras]}
    augment_section = _section(augment.Augmenter, "data.augment")
    for entry in sources.REGISTRY.entries:
        defs[f"data.{entry}"]["properties"]["augment"] = {
            **augment_section,
            "description": defs[f"data.{entry}"]["properties"]["augment"]["description"],
            "default": None,
        }
    defs["data.synthetic"]["allOf"] = _generators()
    defs["data"]["description"] = "Where the samples come from: 'source' picks the kind (absent: synthetic spirals)."
    training = _section(TrainingSettings, "training", {"callbacks": _callbacks(defs), "class_weight": _class_weight()})
    shape = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
    model = {
        "type": "object",
        "description": "The network: one sample's shape and its layers in order. " + TOOL_ONLY,
        "properties": {
            "input_shape": {
                "description": "One sample's shape, without the batch axis: [10], [28, 28].",
                "anyOf": [{"type": "array", "items": shape, "minItems": 1}, shape],
            },
            "layers": {
                "description": "The layers, each {type: ..., its arguments}.",
                "type": "array",
                "items": {"$ref": "#/$defs/layer"},
                "minItems": 1,
            },
        },
        "required": ["input_shape", "layers"],
        "additionalProperties": False,
    }
    props = {
        "name": {
            "type": "string",
            "pattern": r"^[^./\\\u0000][^/\\\u0000]*$",
            "description": "Names the run directory (default: the file's name); no '/', not starting with '.'.",
        },
        "seed": {
            "type": "integer",
            "minimum": 0,
            "maximum": 2**32 - 1,
            "default": 0,
            "description": "Seeds initializers, dropout, shuffling, synthetic data and splits.",
        },
        "dtype": {"enum": list(DTYPES), "default": DTYPES[0], "description": "The dtype of weights and activations."},
        "data": {"$ref": "#/$defs/data"},
        "model": model,
        "loss": {"$ref": "#/$defs/loss"},
        "metrics": _metrics(),
        "optimizer": {"$ref": "#/$defs/optimizer", "default": "adam"},
        "training": training,
        "monitor": _section(MonitorSettings, "monitor"),
    }
    props["optimizer"]["description"] = "The optimizer (default adam)."
    props["loss"] = {"$ref": "#/$defs/loss", "description": "The loss; required."}
    if "expect" in TOP_KEYS:
        props["expect"] = _expect()
    # resolve's keys, in its order (a key it has that this schema does not know yet: any value, dnn checks it)
    props = {key: props.get(key, {"description": "Checked by dnn."}) for key in TOP_KEYS}
    return {
        "$schema": DIALECT,
        "$id": "https://dnncli.invalid/schema/config.schema.json",
        "title": "dnn config",
        "description": "A dnn experiment config (dnn train CONFIG). Generated by `dnn schema` from the registries;"
        " do not edit. " + TOOL_ONLY,
        "type": "object",
        "properties": props,
        "required": ["model", "loss"],
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }


def render(sweep: bool = False) -> str:
    """The schema as the shipped file holds it: JSON, two spaces, a final newline."""
    from dnncli.experiment.sweep.schema import sweep_schema

    return json.dumps(sweep_schema() if sweep else config_schema(), indent=2, ensure_ascii=False) + "\n"
