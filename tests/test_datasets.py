"""data/: the shipped tables, the one rule that finds a config's $DNN_DATASETS paths, and dnn data list."""

import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.cli.views.results import data_list_view
from dnncli.cli.views.tables import show
from dnncli.data import SOURCES, catalog
from dnncli.errors import DnnError
from dnncli.experiment import config as config_mod

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [d for d in catalog.CATALOG.values() if d.availability == "ships"]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def no_variable(monkeypatch, tmp_path):
    """No $DNN_DATASETS, and a current directory without data/."""
    monkeypatch.delenv("DNN_DATASETS", raising=False)
    monkeypatch.chdir(tmp_path)


def _tree(root: Path, name="iris", file="iris.csv", text="a,b\n1,2\n") -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / file).write_text(text)
    return root / name / file


# the shipped files --------------------------------------------------------------------
@pytest.mark.parametrize("info", SHIPPED, ids=lambda d: d.name)
def test_each_shipped_file_matches_its_checksum_in_the_catalog_and_the_readme(info):
    readme = (ROOT / "data" / "README.md").read_text()
    for file, digest in info.files.items():
        path = ROOT / "data" / info.name / file
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        assert path.stat().st_size < 400 * 1024  # "a CSV of at most a few hundred KiB"
        row = next(line for line in readme.splitlines() if f"`{file}`" in line)
        assert digest in row and f"{path.stat().st_size:,} B" in row
        assert info.config in row


def test_the_shipped_tables_are_what_the_readme_says():
    names = {d.name for d in SHIPPED}
    assert names == {"iris", "breast-cancer", "auto-mpg"}
    rows = {d.name: len((ROOT / "data" / d.name / next(iter(d.files))).read_text().splitlines()) - 1 for d in SHIPPED}
    assert rows == {"iris": 150, "breast-cancer": 569, "auto-mpg": 398}
    for d in SHIPPED:
        assert "CC BY 4.0" in d.license and (ROOT / d.config).exists()


def test_only_the_shipped_files_are_tracked_in_data():
    ignore = (ROOT / ".gitignore").read_text()
    assert "/data/*" in ignore
    for d in SHIPPED:
        assert f"!/data/{d.name}/" in ignore


# the resolution rule ------------------------------------------------------------------
def test_the_variable_comes_first(monkeypatch, tmp_path):
    mine = _tree(tmp_path / "mine", text="mine\n")
    repo = tmp_path / "repo"
    _tree(repo / "data", text="repo\n")
    (repo / "configs").mkdir()
    monkeypatch.setenv("DNN_DATASETS", str(tmp_path / "mine"))
    monkeypatch.chdir(tmp_path)
    assert catalog.locate("$DNN_DATASETS/iris/iris.csv", repo / "configs") == mine
    assert catalog.locate("${DNN_DATASETS}/iris/iris.csv", repo / "configs") == mine


def test_unset_it_is_data_beside_the_config_then_here(no_variable, tmp_path):
    repo = tmp_path / "repo"
    found = _tree(repo / "data")
    (repo / "configs" / "deeper").mkdir(parents=True)
    assert catalog.locate("$DNN_DATASETS/iris/iris.csv", repo / "configs" / "deeper") == found.resolve()
    # no config folder (the Python API with a mapping): the current directory's data/
    here = _tree(tmp_path / "data", text="here\n")
    assert catalog.locate("$DNN_DATASETS/iris/iris.csv", None) == Path.cwd() / "data" / "iris" / "iris.csv"
    assert here.exists()


def test_set_but_without_the_file_it_falls_back_to_data(monkeypatch, tmp_path):
    repo = tmp_path / "repo"
    found = _tree(repo / "data")
    (repo / "configs").mkdir()
    (tmp_path / "shared").mkdir()
    monkeypatch.setenv("DNN_DATASETS", str(tmp_path / "shared"))
    monkeypatch.chdir(tmp_path)
    assert catalog.locate("$DNN_DATASETS/iris/iris.csv", repo / "configs") == found.resolve()


def test_neither_names_both_places_and_the_fetch_command(no_variable, tmp_path):
    (tmp_path / "repo" / "data").mkdir(parents=True)
    (tmp_path / "repo" / "configs").mkdir()
    with pytest.raises(DnnError) as err:
        catalog.locate("$DNN_DATASETS/mnist", tmp_path / "repo" / "configs")
    msg = err.value.message
    assert "$DNN_DATASETS (not set)" in msg
    assert str((tmp_path / "repo" / "data" / "mnist").resolve()) in msg
    assert str(tmp_path / "data" / "mnist") in msg
    assert msg.endswith("download it with: dnn data fetch mnist.")


def test_the_message_for_a_shipped_and_a_brought_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv("DNN_DATASETS", str(tmp_path / "shared"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DnnError, match=r"\$DNN_DATASETS \(.*shared/iris/iris\.csv\).*ships in the repository"):
        catalog.locate("$DNN_DATASETS/iris/iris.csv", None)
    with pytest.raises(DnnError, match=r"get it from https://github\.com/ageron/.* in data/california-housing/"):
        catalog.locate("$DNN_DATASETS/california-housing/housing.csv", None)


def test_other_variables_and_plain_paths_are_untouched(monkeypatch, tmp_path):
    assert catalog.reference("$DNN_DATASETSX/a") is None and catalog.reference("data/iris/iris.csv") is None
    assert catalog.reference("$DNN_DATASETS") == "" and catalog.reference("$DNN_DATASETS/a/b") == "a/b"


def test_a_missing_dataset_in_train_names_the_config_key_and_the_fix(no_variable, tmp_path):
    cfg = tmp_path / "mnist.yaml"
    shutil.copy(ROOT / "configs" / "mnist.yaml", cfg)
    r = run("train", cfg, "--out", tmp_path / "run")
    assert r.exit_code == 2
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{cfg}: data.path: $DNN_DATASETS/mnist: not found in $DNN_DATASETS (not set) nor in data/" in line
    assert line.endswith("dnn data fetch mnist.")


def test_validate_and_summary_need_no_data(no_variable):
    assert run("validate", ROOT / "configs" / "mnist.yaml").exit_code == 0
    assert run("summary", ROOT / "configs" / "fashion_mnist.yaml").exit_code == 0


# the shipped configs train ------------------------------------------------------------
@pytest.mark.parametrize("info", SHIPPED, ids=lambda d: d.name)
def test_each_shipped_table_trains_one_epoch_without_the_variable(info, no_variable, tmp_path):
    out = tmp_path / "run"
    r = run("train", ROOT / info.config, "--epochs", 1, "--quiet", "--out", out)
    assert r.exit_code == 0, r.output
    assert "Test: loss" in r.output
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 2
    r = run("eval", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert ("accuracy" in report) == (info.task != "regression")


def test_the_shipped_configs_all_use_the_rule():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        data = config_mod.load(path, check_paths=False)["data"]
        for key in SOURCES[data["source"]].path_keys:
            if data[key] is not None:
                assert data[key].startswith("$DNN_DATASETS/"), f"{path.name}: data.{key}: {data[key]}"


# dnn data list / fetch --------------------------------------------------------------
def test_data_list_shows_what_ships_what_downloads_and_where_it_is(no_variable):
    os.chdir(ROOT)
    r = CliRunner().invoke(app, ["data", "list"])
    assert r.exit_code == 0, r.output
    for d in catalog.CATALOG.values():
        assert d.name in r.output
    assert re.search(r"iris\s+ships\s+.*data/iris\s+iris\.yaml", r.output)
    assert re.search(r"mnist\s+download\s+.*not here", r.output)
    assert "mnist: download it with: dnn data fetch mnist" in r.output
    assert "$DNN_DATASETS (not set)" in r.output


def test_data_list_json_and_check(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    shared = tmp_path / "shared"
    _tree(shared, "pima-indians-diabetes", "pima-indians-diabetes.csv", "not the real file\n")
    monkeypatch.setenv("DNN_DATASETS", str(shared))
    r = run("data", "list", "--json", "--check")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    by = {d["name"]: d for d in report["datasets"]}
    assert report["variable"] == str(shared)
    assert by["iris"]["present"] and by["iris"]["folder"] == str((ROOT / "data" / "iris").resolve())
    assert by["iris"]["checksums"] == [{"file": "iris.csv", "ok": True}]
    assert by["pima-indians-diabetes"]["folder"] == str(shared / "pima-indians-diabetes")
    assert by["pima-indians-diabetes"]["checksums"] == [{"file": "pima-indians-diabetes.csv", "ok": False}]
    assert by["mnist"]["present"] is False and by["mnist"]["get"] == "download it with: dnn data fetch mnist"


@pytest.mark.parametrize("width", [80, 120])
def test_data_list_fits_the_terminal_and_cuts_nothing(no_variable, width):
    os.chdir(ROOT)
    console = Console(width=width, record=True, file=io.StringIO())
    report = catalog.listing(Path.cwd())
    show(console, data_list_view(console, report))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width and "…" not in text
    for d in catalog.CATALOG.values():
        assert re.search(rf"^{re.escape(d.name)}\s", text, re.M)
    assert "iris.yaml" in text and "data/iris" in text
    assert ("left out to fit" in text) == (width < 100)
    assert "https://github.com/ageron/handson-ml2/tree/master/datasets/housing" in text.replace("\n", "")


def test_fetch_goes_where_the_rule_looks(monkeypatch, tmp_path):
    monkeypatch.setenv("DNN_DATASETS", str(tmp_path / "shared"))
    assert catalog.default_directory("mnist") == tmp_path / "shared" / "mnist"
    monkeypatch.delenv("DNN_DATASETS")
    monkeypatch.chdir(tmp_path)
    assert catalog.default_directory("mnist") == Path("data") / "mnist"
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    assert catalog.locate("$DNN_DATASETS/mnist", None) == tmp_path / "data" / "mnist"


DATASETS = os.environ.get("DNN_DATASETS")


@pytest.mark.skipif(DATASETS is None, reason="DNN_DATASETS is not set")
def test_data_list_finds_the_real_datasets(monkeypatch):
    monkeypatch.chdir(ROOT)
    report = json.loads(run("data", "list", "--json", "--check").output)
    for d in report["datasets"]:
        if d["availability"] != "ships":
            assert d["present"], f"{d['name']} is missing from {DATASETS} although DNN_DATASETS is set"
        assert all(c["ok"] for c in d["checksums"]), d
