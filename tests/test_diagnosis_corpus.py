"""The fast part of the diagnosis corpus (bench/diagnosis/): the score's targets on the entries marked fast.

The whole corpus is a benchmark: python bench/diagnosis_score.py (README, "The diagnosis, scored").
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def score():
    spec = importlib.util.spec_from_file_location("diagnosis_score", ROOT / "bench" / "diagnosis_score.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_fast_part_of_the_corpus_meets_every_target(score, monkeypatch):
    monkeypatch.chdir(ROOT)  # the corpus names its tables from the checkout
    entries = [e for e in score.load_corpus() if e.fast]
    kinds = {e.kind for e in entries}
    assert kinds == {"healthy", "pathology"} and len(entries) >= 10
    results, summary = score.score(entries, fast=True)
    failures = [
        score._line(r) for r in results if r["kind"] == "pathology" and not (r["recall"] == 1 and r["tried_top1"])
    ]
    failures += [score._line(r) for r in results if r["kind"] == "healthy" and any(run["flags"] for run in r["runs"])]
    assert not failures, "\n".join(failures)
    assert summary["healthy_runs_flagged"] == 0 and summary["flagged_layer_epochs"] == 0
    assert summary["recall"] == 1.0 and summary["forbidden"] == 0 and summary["contradictions"] == 0
    assert summary["tried_top1"] == summary["pathologies"] and summary["tried_top3"] == summary["pathologies"]
    assert summary["cause_first"] == summary["pathologies"]


def test_every_corpus_config_is_valid_and_every_entry_has_a_teachers_verdict(score):
    from dnncli.experiment.config import load

    entries = score.load_corpus()
    assert sum(e.kind == "healthy" for e in entries) >= 30 and sum(e.kind == "pathology" for e in entries) >= 40
    assert {e.part for e in entries} == {"corpus", "redteam"}
    for e in entries:
        assert e.kind in ("healthy", "pathology") and e.cause, e.name
        if e.kind == "pathology":
            assert (e.expect or e.cause_key) and e.fix and e.cause_key, e.name
        load(e.config, check_paths=False)
