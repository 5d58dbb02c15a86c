"""The results: a row per trial in results.csv, the best configuration, the mean and spread over repeats."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dnncli.errors import DnnError
from dnncli.experiment.modeline import with_modeline
from dnncli.experiment.runfiles import read_history
from dnncli.experiment.sweep.spec import SweepSpec
from dnncli.experiment.sweep.trial import as_float, best_index
from dnncli.files import atomic_write_text

RESULT_FIELDS = ("id", "status", "reason", "metric", "best_epoch", "epochs", "seconds", "repeat", "seed", "run_dir")


@dataclass
class TrialSummary:
    """One trial as the sweep reports it: its parameters, how it ended, its best metric, and, over the repeats
    (seeds) of its configuration, the mean and spread of that metric."""

    id: str
    params: dict
    status: str  # completed | failed | pruned
    reason: str | None
    metric: float | None
    epochs: int | None
    run_dir: str
    mean: float | None = None
    spread: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SweepReport:
    """What ``dnn sweep`` returns: the metric and its direction, every trial, and the best completed one."""

    metric: str
    mode: str
    trials: list[TrialSummary]
    best: TrialSummary | None = None

    def to_dict(self) -> dict:
        best = None if self.best is None else {k: getattr(self.best, k) for k in ("params", "metric", "run_dir")}
        return {"metric": self.metric, "mode": self.mode, "best": best, "trials": [t.to_dict() for t in self.trials]}


def collect(spec: SweepSpec, out: Path, grid_results=None) -> SweepReport:
    """Every trial's record (Tune's word for those stopped early or lost); writes results.csv and best.yaml."""
    trials = []
    seen = set()
    for record_path in sorted((out / "trials").glob("*/trial.json")):
        record = json.loads(record_path.read_text())
        trials.append(record)
        seen.add(record["id"])
    if grid_results is not None:
        for result in grid_results:
            metrics = result.metrics or {}
            trial_id = metrics.get("trial_id") or (Path(result.path).name if result.path else None)
            if trial_id is None or trial_id in seen:
                continue
            seen.add(trial_id)
            config = dict(result.config or {})
            repeat = int(config.pop("repeat", 0))
            status = "failed" if result.error else "pruned"
            reason = str(result.error).strip().split("\n")[-1] if result.error else "stopped early by ASHA"
            run_dir = out / "trials" / str(trial_id)
            history = _history_values(run_dir, spec.metric)
            if history:  # stopped by the scheduler: its best so far, from its own run directory
                best = best_index(history, spec.mode)
                metrics = metrics | {spec.metric: history[best] if best is not None else None, "epoch": len(history)}
            trials.append(
                {
                    "id": trial_id,
                    "params": config,
                    "repeat": repeat,
                    "seed": spec.base["seed"] + repeat,
                    "status": status,
                    "reason": reason,
                    "metric": metrics.get(spec.metric),
                    "best_epoch": None,
                    "epochs": metrics.get("epoch", 0),
                    "seconds": metrics.get("time_total_s"),
                    "run_dir": str(run_dir),
                }
            )
    return _summarize(spec, out, trials)


def _history_values(run_dir: Path, metric: str) -> list[float]:
    try:
        return [as_float(r.get(metric)) for r in read_history(run_dir)]
    except DnnError:  # stopped before its first epoch ended, or its history damaged: no values to rank
        return []


def _summarize(spec: SweepSpec, out: Path, trials: list[dict]) -> SweepReport:
    keys = list(spec.parameters)
    groups: dict[str, list[dict]] = {}
    for t in trials:
        groups.setdefault(json.dumps([t["params"].get(k) for k in keys]), []).append(t)
    ok = [t for t in trials if t["status"] == "completed" and t["metric"] is not None]
    best = None
    if ok:
        pick = min if spec.mode == "min" else max
        best = pick(ok, key=lambda t: t["metric"])
    for members in groups.values():
        values = [t["metric"] for t in members if t["status"] == "completed" and t["metric"] is not None]
        mean = float(np.mean(values)) if len(values) > 1 else None  # over repeats (seeds) of one configuration
        spread = float(np.std(values)) if len(values) > 1 else None
        for t in members:
            t["mean"], t["spread"] = mean, spread
    _write_results(out, keys, trials)
    summaries = [TrialSummary(**{k: t.get(k) for k in TrialSummary.__dataclass_fields__}) for t in trials]
    chosen = next((s for s, t in zip(summaries, trials) if t is best), None)
    if chosen is not None:
        config = Path(chosen.run_dir) / "config.yaml"
        if config.exists():
            # its modeline pointed from the trial's folder; from here, it points again at the schema
            atomic_write_text(out / "best.yaml", with_modeline(config.read_text(), at=out / "best.yaml"))
    return SweepReport(spec.metric, spec.mode, summaries, chosen)


def _write_results(out: Path, keys: list[str], trials: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*keys, *RESULT_FIELDS])
    for t in trials:
        row = [
            json.dumps(t["params"].get(k)) if isinstance(t["params"].get(k), (dict, list)) else t["params"].get(k)
            for k in keys
        ]
        writer.writerow(row + ["" if t.get(f) is None else t.get(f) for f in RESULT_FIELDS])
    atomic_write_text(out / "results.csv", buf.getvalue())
