"""Score the gradient diagnosis on a corpus of healthy and broken networks (bench/diagnosis/).

Each network of ``bench/diagnosis/corpus.yaml`` comes with what a teacher would say of it: for a healthy one,
nothing; for a pathology, the flags expected per layer, the flags it may also raise, those it must not, the
cause and the fix. The score:

- false flags: healthy networks trained for ``factor`` times their epochs with three seeds: the runs that raise
  any flag (a transient flag at initialization, reported as such, is counted apart), and the flagged
  layer-epochs among all layer-epochs;
- recall: for each pathology, the share of its expected (layer, flag) pairs the diagnosis raises; and the
  forbidden flags it raised;
- contradictions: records at which one layer holds opposite verdicts, or a report whose spans of them overlap
  (vanishing with exploding, collapsed with
  exploding), over every run;
- cure: each advice item applied as ``--try-advice`` applies it (same seed, same steps): it cures when the
  pathology's flags clear, no new flag is raised, nothing is non-finite and the loss ends lower (and, where an
  uninformed model's loss is known, below it). Top-1 and top-3,
  in the order ``inspect-gradients`` prints the advice before trying (static) and in the order ``--try-advice``
  ranks it (tried, its recommendation first).

    python bench/diagnosis_score.py                 # the whole corpus (a few minutes on 2 cores)
    python bench/diagnosis_score.py --fast          # the part CI runs
    python bench/diagnosis_score.py --only p_compound_gain --verbose
    python bench/diagnosis_score.py --json > score.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "bench" / "diagnosis"
OPPOSITE = [("vanishing", "exploding"), ("collapsed", "exploding"), ("collapsed", "vanishing")]


@dataclass
class Entry:
    """One network of the corpus and what a teacher would say of it."""

    name: str
    kind: str  # healthy | pathology
    config: Path
    cause: str = ""
    fix: str = ""
    factor: int = 4  # healthy: train this many times the config's epochs
    seeds: tuple = (0, 1, 2)
    steps: int | None = None  # pathology: inspect this many steps (default one epoch, as inspect-gradients)
    expect: dict = field(default_factory=dict)  # flag -> layer names it must be raised on
    allow: list = field(default_factory=list)  # flags it may also raise, on any layer
    forbid: list = field(default_factory=list)  # flags it must never raise
    fast: bool = False  # in the part CI runs
    cause_key: str = ""  # the key the teacher's fix changes: the first advice item should change it
    part: str = "corpus"  # corpus (written with the rules) or redteam (written against them, unseen)


PARTS = {"corpus": CORPUS / "corpus.yaml", "redteam": CORPUS / "redteam" / "corpus.yaml"}


def load_corpus(parts=tuple(PARTS)) -> list[Entry]:
    out = []
    for part in parts:
        path = PARTS[part]
        for name, e in yaml.safe_load(path.read_text()).items():
            e = dict(e)
            config = (path.parent / e.pop("config", f"{name}.yaml")).resolve()
            if "seeds" in e:
                e["seeds"] = tuple(e["seeds"])
            out.append(Entry(name=name, config=config, part=part, **e))
    return out


@dataclass
class RecordLog:
    """What the tracker held, record by record: (layer, epoch, flag) triples and opposite verdicts."""

    held: set = field(default_factory=set)
    contradictions: list = field(default_factory=list)
    records: int = 0


@contextmanager
def watching():
    """Log every record the flag tracker judges (the tracker's own state, read after each update)."""
    from dnncli.diagnostics import rules

    log = RecordLog()
    original = rules.FlagTracker.update

    def update(self, rows, *loss):
        original(self, rows, *loss)
        log.records += 1
        epoch = rows[0]["epoch"] if rows else 0
        for w in self.layers:
            active = {f.name for f in self.flags(w.index) if f.active}
            for name in active:
                log.held.add((w.name, epoch, name))
            for a, b in OPPOSITE:
                if a in active and b in active:
                    log.contradictions.append((w.name, rows[0]["step"] if rows else 0, a, b))

    rules.FlagTracker.update = update
    try:
        yield log
    finally:
        rules.FlagTracker.update = original


def _load(entry: Entry, overrides=()):
    from dnncli.experiment import config as config_mod

    return config_mod.load(entry.config, list(overrides))


def _lasting(report) -> set[tuple[str, str]]:
    """(layer, flag) pairs raised and not transient."""
    return {(layer.name, f.flag) for layer in report.layers for f in layer.flag_info if not f.transient}


def _transient(report) -> set[tuple[str, str]]:
    return {(layer.name, f.flag) for layer in report.layers for f in layer.flag_info if f.transient}


def score_healthy(entry: Entry, factor: int | None = None, seeds=None) -> dict:
    from dnncli.experiment.inspection import inspect_config

    factor = factor or entry.factor
    runs = []
    for seed in seeds or entry.seeds:
        config = _load(entry).replaced(("seed",), seed)
        epochs = config["training"]["epochs"] * factor
        with watching() as log:
            report = inspect_config(config, steps=_steps_per_epoch(config) * epochs)
        lasting, transient = _lasting(report), _transient(report)
        layer_epochs = len(report.layers) * epochs
        flagged = {(layer, epoch) for layer, epoch, flag in log.held if (layer, flag) in lasting}
        runs.append(
            {
                "seed": seed,
                "epochs": epochs,
                "flags": sorted(f"{layer}: {flag}" for layer, flag in lasting),
                "transient": sorted(f"{layer}: {flag}" for layer, flag in transient),
                "flagged_layer_epochs": len(flagged),
                "layer_epochs": layer_epochs,
                "contradictions": len(log.contradictions),
                "details": [d for layer in report.layers for d in layer.details],
            }
        )
    return {"name": entry.name, "kind": "healthy", "part": entry.part, "runs": runs}


def _steps_per_epoch(config) -> int:
    from dnncli.experiment.prepare import prepare_data

    model = config.build_model()
    data = prepare_data(config, model, config.build_loss())
    return math.ceil(len(data.x_train) / config.batch_size(len(data.x_train)))


def _final_loss(report) -> float:
    if report.nonfinite is not None:
        return math.inf
    final = report.loss.final
    return math.inf if final is None or not math.isfinite(final) else final


def cures(entry: Entry, before, after) -> tuple[bool, str]:
    """Whether ``after`` (an ``InspectionReport`` with an advice item applied) cures ``before``, and why not."""
    expected = {(layer, flag) for flag, layers in entry.expect.items() for layer in layers}
    raised_before = _lasting(before)
    pathology = {(layer, flag) for layer, flag in raised_before if flag in entry.expect} | (expected & raised_before)
    left = pathology & _lasting(after)
    new = _lasting(after) - raised_before
    why = []
    if left:
        why.append(f"{len(left)} of its flags remain")
    if new:
        why.append("new flags: " + ", ".join(f"{layer} {flag}" for layer, flag in sorted(new)[:4]))
    if after.nonfinite is not None:
        why.append("non-finite")
    was, now = _final_loss(before), _final_loss(after)
    if not (now < 0.95 * was or (was <= 1e-3 and now <= 1e-3)):  # as --try-advice judges: clearly lower
        why.append(f"loss {_final_loss(before):.4g} -> {_final_loss(after):.4g}")
    elif math.isfinite(_final_loss(before)) and getattr(after.loss, "knows_nothing", False):
        # still above an uninformed model's: cured only if at least halfway there from the network's own
        was, now, chance = before.loss.final_data, after.loss.final_data, after.loss.uninformed
        if was is not None and was - now < 0.5 * (was - chance):
            why.append(f"data loss {was:.4g} -> {now:.4g}, not halfway to an uninformed model's {chance:.4g}")
    return not why, "; ".join(why)


def score_pathology(entry: Entry, verbose: bool = False) -> dict:
    from dnncli.experiment import inspection

    config = _load(entry)
    with watching() as log:
        report = inspection.inspect_config(config, steps=entry.steps)
    raised = _lasting(report) | _transient(report)
    expected = {(layer, flag) for flag, layers in entry.expect.items() for layer in layers}
    found = expected & raised
    forbidden = sorted(f"{layer}: {flag}" for layer, flag in raised if flag in entry.forbid)
    unexpected = sorted(
        f"{layer}: {flag}"
        for layer, flag in raised
        if flag not in entry.expect and flag not in entry.allow and flag not in entry.forbid
    )
    advice = report.advice
    outcomes = []
    for k, item in enumerate(advice, start=1):
        after = inspection.inspect_config(config.with_overrides(item["set"]), steps=entry.steps)
        ok, why = cures(entry, report, after)
        outcomes.append({"advice": k, "set": item["set"], "cured": ok, "why": why, "text": item["text"][:100]})
    static = [o["cured"] for o in outcomes]
    tried = _tried_order(config, report, entry)
    return {
        "name": entry.name,
        "kind": "pathology",
        "part": entry.part,
        "recall": len(found) / len(expected) if expected else 1.0,
        "missed": sorted(f"{layer}: {flag}" for layer, flag in expected - raised),
        "forbidden": forbidden,
        "unexpected": unexpected,
        "contradictions": len(log.contradictions) + _overlapping_spans(report),
        "cause_first": bool(advice) and any(_changes(s, entry.cause_key) for s in advice[0]["set"]),
        "first_advice": advice[0]["set"][:2] if advice else [],
        "static_top1": bool(static[:1] and static[0]),
        "static_top3": any(static[:3]),
        "tried_top1": tried[0] if tried else False,
        "tried_top3": any(tried[:3]),
        "advice": outcomes,
        "flags": sorted(f"{layer}: {flag}" for layer, flag in raised),
    }


def _overlapping_spans(report) -> int:
    """Opposite verdicts of one layer whose spans, as the report states them, overlap (each a single stretch): the
    tracker holds one at a record, but an onset backdated into the other's records would still read as both."""
    count = 0
    for layer in report.layers:
        single = {f.flag: f for f in layer.flag_info if f.episodes == 1}
        for a, b in OPPOSITE:
            if a in single and b in single:
                fa, fb = single[a], single[b]
                count += not (fa.last_step < fb.onset_step or fb.last_step < fa.onset_step)
    return count


def _changes(override: str, key: str) -> bool:
    """Whether ``--set override`` changes ``key`` (a dotted key, or a layer key such as kernel_initializer)."""
    path = override.split("=", 1)[0]
    return (
        path == key
        or path.startswith(key + ".")
        or path.endswith("." + key)
        or (key in ("activation", "kernel_initializer", "bias_initializer") and path == "model.layers")
    )


def _tried_order(config, report, entry) -> list[bool]:
    """Cures in the order --try-advice ranks the advice (its recommendation first), judged as the score judges."""
    from dnncli.experiment import inspection

    if not report.advice:
        return []
    try:
        from dnncli.experiment import cure
    except ImportError:  # a tree from before --try-advice ranked: the order it printed
        tried = report.advice
    else:
        tried = cure.try_advice(config, report, report.advice, steps=entry.steps)
    out = []
    for item in tried:
        after = inspection.inspect_config(config.with_overrides(item["set"]), steps=entry.steps)
        out.append(cures(entry, report, after)[0])
    return out


def summarize(results: list[dict]) -> dict:
    healthy = [r for r in results if r["kind"] == "healthy"]
    patho = [r for r in results if r["kind"] == "pathology"]
    runs = [run for r in healthy for run in r["runs"]]
    n = len(patho)
    return {
        "healthy_runs": len(runs),
        "healthy_runs_flagged": sum(1 for run in runs if run["flags"]),
        "healthy_runs_transient": sum(1 for run in runs if run["transient"] and not run["flags"]),
        "flagged_layer_epochs": sum(run["flagged_layer_epochs"] for run in runs),
        "layer_epochs": sum(run["layer_epochs"] for run in runs),
        "pathologies": n,
        "recall": sum(r["recall"] for r in patho) / n if n else 1.0,
        "full_recall": sum(1 for r in patho if r["recall"] == 1.0),
        "forbidden": sum(len(r["forbidden"]) for r in patho),
        "contradictions": sum(r["contradictions"] for r in patho) + sum(run["contradictions"] for run in runs),
        "cause_first": sum(r["cause_first"] for r in patho),
        "static_top1": sum(r["static_top1"] for r in patho),
        "static_top3": sum(r["static_top3"] for r in patho),
        "tried_top1": sum(r["tried_top1"] for r in patho),
        "tried_top3": sum(r["tried_top3"] for r in patho),
    }


def score(entries: list[Entry], fast: bool = False, verbose: bool = False) -> tuple[list[dict], dict]:
    from dnncli.errors import DnnError

    results = []
    for e in entries:
        start = time.perf_counter()
        try:
            if e.kind == "healthy":
                r = score_healthy(e, factor=2 if fast else None, seeds=(0,) if fast else None)
            else:
                r = score_pathology(e, verbose)
        except DnnError as err:
            if "not found in $DNN_DATASETS" not in err.message:
                raise
            # a table that does not ship (wine quality, Pima): scored where DNN_DATASETS holds it
            print(f"{e.name}: skipped, its data is not here: set DNN_DATASETS", file=sys.stderr)
            continue
        r["seconds"] = round(time.perf_counter() - start, 1)
        results.append(r)
        if verbose:
            print(_line(r), file=sys.stderr, flush=True)
    return results, summarize(results)


def _line(r: dict) -> str:
    if r["kind"] == "healthy":
        flagged = [f"seed {run['seed']}: {', '.join(run['flags'])}" for run in r["runs"] if run["flags"]]
        transient = [f"seed {run['seed']}: {', '.join(run['transient'])}" for run in r["runs"] if run["transient"]]
        text = f"{r['name']:<24} healthy   {'FLAGGED ' + '; '.join(flagged) if flagged else 'clean'}"
        if transient:
            text += f" (transient: {'; '.join(transient)})"
        return text + f"  [{r['seconds']}s]"
    marks = "".join("+" if a["cured"] else "-" for a in r["advice"])
    text = (
        f"{r['name']:<24} recall {r['recall']:.0%}  advice {marks or '(none)'}"
        f"  tried-top1 {'yes' if r['tried_top1'] else 'no'}  [{r['seconds']}s]"
    )
    if not r["cause_first"]:
        text += f"\n    first advice does not name the cause: {r['first_advice']}"
    for key in ("missed", "forbidden", "unexpected"):
        if r[key]:
            text += f"\n    {key}: {', '.join(r[key])}"
    for a in r["advice"]:
        if not a["cured"]:
            text += f"\n    advice {a['advice']} ({' '.join(a['set'])[:60]}): {a['why']}"
    return text


def table(s: dict) -> str:
    def pct(a, b):
        return f"{a}/{b} ({100 * a / b:.0f}%)" if b else "-"

    n = s["pathologies"]
    rows = [
        ("healthy runs with a flag", pct(s["healthy_runs_flagged"], s["healthy_runs"]), "0"),
        ("  with a transient flag only", pct(s["healthy_runs_transient"], s["healthy_runs"]), "reported as such"),
        ("flagged layer-epochs (healthy)", pct(s["flagged_layer_epochs"], s["layer_epochs"]), "0"),
        ("recall (mean over pathologies)", f"{100 * s['recall']:.0f}%", "100%"),
        ("pathologies fully recalled", pct(s["full_recall"], n), f"{n}/{n}"),
        ("forbidden flags raised", str(s["forbidden"]), "0"),
        ("contradictions (records)", str(s["contradictions"]), "0"),
        ("first advice names the cause", pct(s["cause_first"], n), ""),
        ("top-1 cure, as printed", pct(s["static_top1"], n), ""),
        ("top-3 cure, as printed", pct(s["static_top3"], n), ""),
        ("top-1 cure, --try-advice ranked", pct(s["tried_top1"], n), ">= 90%"),
        ("top-3 cure, --try-advice ranked", pct(s["tried_top3"], n), "100%"),
    ]
    w = max(len(r[0]) for r in rows)
    out = [f"{'figure':<{w}}  {'score':>14}  target", f"{'-' * w}  {'-' * 14}  ------"]
    out += [f"{a:<{w}}  {b:>14}  {c}" for a, b, c in rows]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="only the entries marked fast, shorter healthy runs")
    parser.add_argument("--only", nargs="*", help="these entries")
    parser.add_argument("--verbose", action="store_true", help="a line per entry on stderr as it is scored")
    parser.add_argument("--json", action="store_true", help="every result as JSON")
    parser.add_argument("--part", choices=sorted(PARTS), help="one part of the corpus only")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # the corpus's tables are named relative to the checkout
    warnings.simplefilter("ignore")  # p_loss_mismatch is warned of as it loads: the point of that entry
    entries = load_corpus((args.part,) if args.part else tuple(PARTS))
    if args.only:
        entries = [e for e in entries if e.name in args.only]
    elif args.fast:
        entries = [e for e in entries if e.fast]
    start = time.perf_counter()
    results, summary = score(entries, fast=args.fast, verbose=args.verbose)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    parts = {part: summarize([r for r in results if r["part"] == part]) for part in PARTS}
    if args.json:
        print(json.dumps({"summary": summary, "parts": parts, "results": results}, indent=1, default=str))
        return 0
    print(f"Diagnosis corpus: {len(entries)} networks, {summary['seconds']} s")
    print(table(summary))
    for part, s in parts.items():
        if s["healthy_runs"] + s["pathologies"] and len(parts) > 1:
            print(f"\n{part}: {s['healthy_runs']} healthy runs, {s['pathologies']} pathologies")
            print(table(s))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())

__all__ = ["Entry", "asdict", "load_corpus", "score", "summarize", "table"]
