"""The JSON Schema of a config and the tool agree (issue 26): every shipped config, every config of the tests and the
bad inputs of the test suite go through both ``jsonschema`` and ``dnn``'s own resolution; what one accepts the other
accepts, and a rejection points at the same key. The shipped schemas are current, every shipped config names them in
its modeline, every config the tool writes does too, and ``dnn init`` writes a config that trains."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.errors import DnnError
from dnncli.experiment import schema as schema_mod
from dnncli.experiment.modeline import FILES, PACKAGE_DIR, PREFIX, load_schema
from dnncli.experiment.overrides import apply_overrides
from dnncli.experiment.resolve import TOP_KEYS, resolve
from dnncli.yamlfile import parse_yaml, read_yaml

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
CONFIG = Draft202012Validator(load_schema())
SWEEP = Draft202012Validator(load_schema(sweep=True))
SHIPPED = sorted(ROOT.glob("configs/*.yaml")) + [
    p for p in sorted(ROOT.glob("bench/diagnosis/**/*.yaml")) if p.name != "corpus.yaml"
]
SWEEPS = sorted(ROOT.glob("configs/sweeps/*.yaml"))
UPDATE = "dnn schema --update"

# Rules JSON Schema cannot say, which the tool keeps (the schema says so in its descriptions): the key the tool names,
# and what its message says. A rejection the schema misses is allowed only when it is one of these.
TOOL_ONLY = [
    (r"data\.class_names", r"class_names lists|class_names applies"),
    (r"monitor\.growth_window", r"larger than monitor\.smooth"),
    (r"loss", r"softmax"),
    (r"metrics(\.\d+)?", r"needs targets|twice"),
    (r"training\.class_weight.*", r"class"),
    (r"model\.layers(\.\d+)?(\.\w+)?", r"expects a flat input|used twice|too many for this machine|flatten"),
    (r"data\.(validation_path|validation_x_path)", r"both choose the validation set"),
    (r"optimizer\.(clipvalue|global_clipnorm)", r"only one of"),
    (r"training\.callbacks\.reduce_lr_on_plateau", r"schedule"),
    (r".*", r"must be a finite number"),  # NaN and infinity are numbers to JSON Schema
    (r"data\.\w*path", r"go together|all four file keys"),
    (r"expect.*", r".*"),  # bounds and names of what a run logs, checked against the config by dnn
]


def _leaves(err):
    if err.context:
        for sub in err.context:
            yield from _leaves(sub)
    else:
        yield err


def schema_errors(validator, mapping) -> list[tuple[list, str]]:
    """Each error the schema finds: (the key its most specific part points at, its message)."""
    out = []
    for err in validator.iter_errors(mapping):
        best = None
        for leaf in _leaves(err):
            path = list(leaf.absolute_path)
            if leaf.validator in ("additionalProperties", "required"):
                path.append(re.findall(r"'([^']*)'", leaf.message)[0])
            # deepest first; among equals, a specific error over a branch that did not match the value's kind
            rank = (len(path), leaf.validator not in ("type", "enum", "const", "anyOf", "oneOf"))
            if best is None or rank > best[0]:
                best = (rank, path, leaf.message)
        out.append((best[1], best[2]))
    return out


def schema_verdict(validator, mapping) -> tuple[list, str] | None:
    """None, or the first error the schema finds."""
    errors = schema_errors(validator, mapping)
    return errors[0] if errors else None


def tool_verdict(mapping) -> tuple[list, str] | None:
    try:
        resolve(mapping, check_paths=False)
    except DnnError as err:
        return list(err.key), err.message
    return None


def _at(mapping, key):
    for part in key:
        try:
            mapping = mapping[part]
        except (KeyError, IndexError, TypeError):
            return None
    return mapping


def dotted(key) -> str:
    return ".".join(str(k) for k in key)


def _literal_configs() -> list[tuple[str, dict]]:
    """Every config written in the tests as a literal: a dict, or a YAML text, with a model."""
    out = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            value = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "model" in node.value:
                try:
                    value = parse_yaml(node.value)
                except Exception:
                    continue
            elif isinstance(node, ast.Dict):
                try:
                    value = ast.literal_eval(node)
                except (ValueError, SyntaxError, TypeError):
                    continue
            if isinstance(value, dict) and "model" in value and {str(k) for k in value} <= set(TOP_KEYS):
                out.append((f"{path.name}:{node.lineno}", value))
    return out


def _overrides_in_tests() -> list[str]:
    """Every ``--set`` override the tests give (``key.path=value``), the bad ones among them."""
    found = set()
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                m = re.fullmatch(
                    r"([a-z_]+(?:\.(?:[a-z_0-9]+|\*))+|seed|name|loss|dtype|metrics)=(.*)", node.value, re.S
                )
                if m and m.group(1).split(".")[0] in TOP_KEYS:
                    found.add(node.value)
    return sorted(found)


def _hostile_bounds() -> list[str]:
    """test_hostile's integers past any sane bound, at each key it tries."""
    tree = ast.parse((TESTS / "test_hostile.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "test_integers_past_any_sane_bound_are_refused_by_name":
            keys = ast.literal_eval(node.decorator_list[0].args[1])
            return [f"{k}={10**400}" for k in keys]
    return []


# Bad inputs of our own, one per kind of rule the schema carries (with the tests' own, above)
BAD = [
    "epochs=3",
    "model.layers.0.type=dens",
    "model.layers.0.unit=4",
    "model.layers.0.units=0",
    "model.layers.0.activation=relux",
    "model.layers.0.activation={name: leaky_relu, slope: 0.1}",
    "model.layers.0.kernel_initializer={name: random_uniform, seed: -1}",
    "model.layers.0.kernel_regularizer={l3: 0.1}",
    "model.layers.0.use_bias=yes please",
    "model.input_shape=[0]",
    "model.extra=1",
    "loss=mse2",
    "loss={name: binary_crossentropy, from_logits: 1}",
    "metrics=[acuracy]",
    "optimizer=adamm",
    "optimizer={name: adam, beta_1: 1.0}",
    "optimizer={name: sgd, learning_rate: {name: cosine_decay, decay_steps: 10}}",
    "optimizer={name: sgd, learning_rate: {name: cosine_decay, initial_learning_rate: 0.1, decay_steps: 0}}",
    "training.batching=minibatch",
    "training.validation_split=1.0",
    "training.callbacks={early_stoping: true}",
    "training.callbacks={early_stopping: {patience: -1}}",
    "training.callbacks={early_stopping: {name: early_stopping}}",
    "training.class_weight=balance",
    "monitor.smooth=0",
    "dtype=float16",
    "seed=-1",
    f"seed={2**32}",
    "name=a/b",
    "data={source: csv, path: x.csv}",
    "data={source: synthetic, generator: moons, classes: 3}",
    "data={source: synthetic, n_samples: 1}",
    "data={source: npz, path: x.npz, scale: cubic}",
    "data={source: sql}",
    "data.augment={shift: -1}",
    # and a few that are fine, written in the less usual forms the tool accepts
    "metrics=[AUC, acc]",
    "metrics=accuracy",
    "model.layers.0.kernel_regularizer={l1: 0.01, l2: 0.01}",
    "model.layers.0.activation=silu",
    "training.callbacks={early_stopping: true, model_checkpoint: null}",
    "data=null",
    "optimizer=null",
]


def _cases() -> list[tuple[str, dict]]:
    cases = [(str(p.relative_to(ROOT)), read_yaml(p)[0]) for p in SHIPPED]
    cases += _literal_configs()
    bases = {name: read_yaml(ROOT / "configs" / f"{name}.yaml")[0] for name in ("quickstart", "iris")}
    for override in dict.fromkeys(_overrides_in_tests() + _hostile_bounds() + BAD):
        for name, base in bases.items():
            try:
                cases.append((f"--set {override[:70]} on {name}", apply_overrides(base, [override])))
            except DnnError:  # the override itself is refused (a pattern that matches nothing)
                continue
    return cases


CASES = _cases()


def test_the_cases_cover_acceptance_and_every_kind_of_rejection():
    rejected = [c for c in CASES if tool_verdict(c[1]) is not None]
    assert len(CASES) > 250 and len(rejected) > 60, (len(CASES), len(rejected))


@pytest.mark.parametrize("name,mapping", CASES, ids=[c[0] for c in CASES])
def test_the_schema_and_the_tool_agree(name, mapping):
    tool, schema = tool_verdict(mapping), schema_verdict(CONFIG, mapping)
    if tool is None:
        assert schema is None, f"the schema refuses what dnn accepts: {dotted(schema[0])}: {schema[1]}"
        return
    if schema is None:
        key, message = dotted(tool[0]), tool[1]
        allowed = [rule for rule in TOOL_ONLY if re.fullmatch(rule[0], key) and re.search(rule[1], message)]
        assert allowed, f"dnn refuses what the schema accepts, and it is not a rule kept to the tool: {key}: {message}"
        return
    # the tool stops at the first error it meets; the schema finds them all: one of them is at the tool's key (a
    # missing key the tool may name by its section, "model needs 'layers'", or by the key itself)
    tool_key = [str(k) for k in tool[0]]
    if tool_key and tool_key[-1] in ("name", "type", "source") and isinstance(_at(mapping, tool[0][:-1]), str):
        tool_key = tool_key[:-1]  # a name written alone: the tool names its 'name', the schema the value itself
    found = [([str(k) for k in key], message) for key, message in schema_errors(CONFIG, mapping)]
    same = [k for k, m in found if k == tool_key or ("required" in m and k[:-1] == tool_key)]
    assert same, f"dnn points at {dotted(tool_key)} ({tool[1]}); the schema at {[dotted(k) for k, _ in found]}"


def test_resolved_configs_are_valid_too(tmp_path):
    """What the tool writes (dnn validate's output, a run's config.yaml: every default filled in) passes the schema."""
    for path in SHIPPED[:30]:
        mapping = read_yaml(path)[0]
        resolved = resolve(mapping, default_name=path.stem, check_paths=False)
        assert schema_verdict(CONFIG, json.loads(json.dumps(resolved))) is None, path


def _sweep_verdict(path: Path):
    from dnncli.experiment.sweep.spec import read_sweep

    try:
        read_sweep(path)
    except DnnError as err:
        return err.message
    return None


@pytest.mark.parametrize(
    "text,key",
    [
        ("config: ../quickstart.yaml\nparameters: {training.batch_size: {values: [16, 32]}}", None),
        ("config: ../quickstart.yaml\nmethod: grdi\nparameters: {seed: {values: [1]}}", "method"),
        ("config: ../quickstart.yaml\ntrials: 0\nmethod: random\nparameters: {seed: {values: [1]}}", "trials"),
        ("config: ../quickstart.yaml\nparameter: {seed: {values: [1]}}", "parameter"),
        ("config: ../quickstart.yaml\nparameters: {seed: {values: []}}", "values"),
        ("config: ../quickstart.yaml\nparameters: {seed: {vals: [1]}}", "seed"),
        (
            "config: ../quickstart.yaml\nparameters: {seed: {values: [1]}}\nearly_stopping: {reduction_factor: 1}",
            "reduction_factor",
        ),
        ("config: ../quickstart.yaml\nparameters: {seed: {values: [1]}}\nearly_stopping: {grace: 1}", "grace"),
    ],
)
def test_the_sweep_schema_and_the_tool_agree(tmp_path, text, key):
    folder = tmp_path / "sweeps"
    folder.mkdir()
    (tmp_path / "quickstart.yaml").write_text((ROOT / "configs" / "quickstart.yaml").read_text())
    path = folder / "s.yaml"
    path.write_text(text)
    tool, found = _sweep_verdict(path), schema_errors(SWEEP, yaml.safe_load(text))
    assert (tool is None) == (not found) == (key is None), (tool, found)
    if key is not None:
        assert key in tool and any(key in [str(k) for k in path] for path, _ in found), (tool, found)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_shipped_sweep_passes_both(path):
    assert schema_verdict(SWEEP, read_yaml(path)[0]) is None
    assert _sweep_verdict(path) is None


def test_the_shipped_schemas_are_current():
    for sweep, name in FILES.items():
        fresh = schema_mod.render(sweep)
        for folder in (PACKAGE_DIR, ROOT / "schema"):
            shipped = (folder / name).read_text() if (folder / name).exists() else ""
            assert shipped == fresh, f"{folder / name} is stale (the registries changed): run {UPDATE}"


def test_the_schema_ships_in_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text()  # read as text: tomllib is Python 3.11's, and 3.10 is supported
    package_data = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^dnncli = \[.*"schema/\*\.json".*\]', package_data, re.M), package_data
    test_extra = pyproject.split("test = [", 1)[1].split("\n]", 1)[0]
    assert '"jsonschema' in test_extra


def test_the_schema_covers_every_name_of_every_registry():
    from dnncli.nn import activations, initializers, layers, losses, optimizers, regularizers, schedules
    from dnncli.train import callbacks

    text = json.dumps(load_schema())
    for module in (activations, initializers, layers, losses, optimizers, regularizers, schedules, callbacks):
        for name in module.REGISTRY.names():
            assert f'"{name}"' in text, name
    dense = load_schema()["$defs"]["layer.dense"]
    assert dense["additionalProperties"] is False and dense["properties"]["units"]["minimum"] == 1
    assert "required" in dense["properties"]["units"]["description"]
    assert load_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", SHIPPED + SWEEPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file_starts_with_its_modeline(path):
    first = path.read_text().split("\n", 1)[0]
    assert first.startswith(PREFIX), f"{path}: first line {first!r}"
    target = (path.parent / first[len(PREFIX) :]).resolve()
    assert target == (ROOT / "schema" / FILES[path in SWEEPS]).resolve()


def _schema_of(text: str, at: Path) -> Path:
    first = next(line for line in text.splitlines() if line.startswith(PREFIX))
    return (at.parent / first[len(PREFIX) :]).resolve()


def test_configs_the_tool_writes_name_the_schema(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["validate", str(ROOT / "configs" / "quickstart.yaml")])
    assert out.exit_code == 0 and out.stdout.startswith(PREFIX)
    assert _schema_of(out.stdout, tmp_path / "resolved.yaml") == (PACKAGE_DIR / FILES[False]).resolve()

    from dnncli.experiment.config import ORIGIN, load
    from dnncli.experiment.cure import dump_config

    cfg = load(ROOT / "configs" / "quickstart.yaml", ["training.epochs=1"])
    run_text = cfg.to_yaml(origin=cfg.path, at=tmp_path / "run" / "config.yaml")
    first, second = run_text.splitlines()[:2]
    assert first.startswith(ORIGIN) and second.startswith(PREFIX)  # load still reads the origin on line 1
    assert _schema_of(run_text, tmp_path / "run" / "config.yaml") == (PACKAGE_DIR / FILES[False]).resolve()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(run_text)
    assert load(tmp_path / "run" / "config.yaml").origin == cfg.path.resolve()

    fixed = dump_config(cfg.written, "a fix", at=tmp_path / "sub" / "fixed.yaml")
    assert fixed.startswith(PREFIX) and _schema_of(fixed, tmp_path / "sub" / "fixed.yaml").is_file()


def test_schema_prints_and_writes_without_overwriting(tmp_path):
    out = CliRunner().invoke(app, ["schema"])
    assert out.exit_code == 0 and json.loads(out.stdout) == load_schema()
    sweep = CliRunner().invoke(app, ["schema", "--sweep", "--out", str(tmp_path / "s.json")])
    assert sweep.exit_code == 0 and json.loads((tmp_path / "s.json").read_text()) == load_schema(sweep=True)
    again = CliRunner().invoke(app, ["schema", "--sweep", "--out", str(tmp_path / "s.json")])
    assert again.exit_code == 2 and "--force" in again.output


# dnn init -------------------------------------------------------------------------------------------------------
DATASETS = os.environ.get("DNN_DATASETS")
TABLES = [ROOT / "data" / "iris" / "iris.csv", ROOT / "data" / "auto-mpg" / "auto_mpg.csv"]
if DATASETS:
    TABLES += [
        Path(DATASETS) / "breast-cancer-wisconsin-diagnostic" / "wdbc.data",
        Path(DATASETS) / "wine-quality" / "winequality-red.csv",
    ]


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.name)
def test_init_writes_a_config_that_trains_an_epoch(tmp_path, monkeypatch, table):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "starter.yaml"
    made = CliRunner().invoke(app, ["init", str(config), "--data", str(table)])
    assert made.exit_code == 0, made.output
    text = config.read_text()
    assert text.startswith(PREFIX) and "target:" in made.output and "# " in text
    assert schema_verdict(CONFIG, yaml.safe_load(text)) is None
    trained = CliRunner().invoke(app, ["train", str(config), "--epochs", "1", "--out", str(tmp_path / "run"), "-q"])
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "run" / "model.npz").exists()


def test_init_guesses_the_target_and_task_and_says_so(tmp_path):
    text_of = {}
    for table in TABLES[:2]:
        out = tmp_path / f"{table.stem}.yaml"
        said = CliRunner().invoke(app, ["init", str(out), "--data", str(table)])
        assert said.exit_code == 0, said.output
        text_of[table.stem] = (yaml.safe_load(out.read_text()), said.output)
    iris, said = text_of["iris"]
    assert iris["data"]["target"] == "species" and iris["loss"] == "sparse_categorical_crossentropy"
    assert iris["model"]["layers"][-1]["units"] == 3 and "species" in said
    mpg, said = text_of["auto_mpg"]
    assert mpg["data"]["target"] == "mpg" and mpg["loss"] == "mse" and mpg["data"]["categorical"] == ["origin"]
    assert mpg["data"]["missing"] == "median" and mpg["data"]["drop"] == ["name"]
    assert mpg["model"]["input_shape"] == [9]  # origin one-hot: 3 columns, as the source encodes it


def test_init_reads_npz_arrays_and_never_overwrites(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "digits.npz", x=rng.integers(0, 256, (60, 8, 8)).astype(np.uint8), y=rng.integers(0, 3, 60))
    out = tmp_path / "digits.yaml"
    made = CliRunner().invoke(app, ["init", str(out), "--data", str(tmp_path / "digits.npz")])
    assert made.exit_code == 0, made.output
    written = yaml.safe_load(out.read_text())
    assert written["model"]["input_shape"] == [8, 8] and written["model"]["layers"][0] == {"type": "flatten"}
    assert written["data"]["scale"] == 255 and written["model"]["layers"][-1]["units"] == 3
    before = out.read_text()
    again = CliRunner().invoke(app, ["init", str(out), "--data", str(tmp_path / "digits.npz"), "--task", "regression"])
    assert again.exit_code == 2 and "--force" in again.output and out.read_text() == before
    forced = CliRunner().invoke(
        app, ["init", str(out), "--data", str(tmp_path / "digits.npz"), "--task", "regression", "--force"]
    )
    assert forced.exit_code == 0 and yaml.safe_load(out.read_text())["loss"] == "mse"
    bad = CliRunner().invoke(app, ["init", str(tmp_path / "x.yaml"), "--task", "clustering"])
    assert bad.exit_code == 2 and "--task" in bad.output
