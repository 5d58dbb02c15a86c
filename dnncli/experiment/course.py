"""``dnn course``: the lessons' claims as experiments that check themselves.

Each file of the course folder (``configs/course/``) is a config with ``expect:`` (one run) or a sweep with
``expect:`` (a grid of trials, each configuration over several seeds, compared by parameters). Its opening comment
names where the claim comes from (``# Lesson: ...``) and quotes it (``# Says: ...``). A sweep's trials run here one
after the other, in this process (no Ray: a course runs anywhere the tool does), into an ordinary sweep directory
(``trials/*`` run directories with their ``trial.json``, ``results.csv``), so ``dnn compare`` and ``dnn check`` read it
as they read any sweep.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dnncli.errors import DnnError, suggest
from dnncli.experiment.expect.check import CheckReport, check_outcome
from dnncli.experiment.expect.compare import ComparisonVerdict, judge, label
from dnncli.experiment.expect.measures import Outcome
from dnncli.files import atomic_write_text
from dnncli.strict_json import dumps

SWEEP_MARKS = ("parameters", "config")  # a sweep file has both; a config has neither


def default_folder() -> Path:
    """``configs/course`` of the working directory, else of the checkout this package runs from."""
    here = Path("configs") / "course"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "configs" / "course"


@dataclass
class Experiment:
    """One file of the course: its name (the file's stem), whether a config or a sweep, and its opening comment's
    lesson, quote and claims."""

    name: str
    path: Path
    kind: str  # config | sweep
    lesson: str = ""
    says: str = ""
    claims: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


@dataclass
class TrialRun:
    """A trial of a course sweep: its parameters, its repeat, its run directory and what its training returned."""

    params: dict
    repeat: int
    run_dir: Path
    result: object = None


@dataclass
class ExperimentResult:
    """An experiment run: its verdicts (a ``CheckReport`` for a config, ``ComparisonVerdict`` for a sweep)."""

    experiment: Experiment
    out: Path
    seconds: float
    runs: int
    check: CheckReport | None = None
    comparisons: list[ComparisonVerdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.check.passed if self.check is not None else all(c.passed for c in self.comparisons)

    def to_dict(self) -> dict:
        return {
            **self.experiment.to_dict(),
            "out": str(self.out),
            "seconds": self.seconds,
            "runs": self.runs,
            "passed": self.passed,
            "check": None if self.check is None else self.check.to_dict(),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


@dataclass
class CourseReport:
    """``dnn course``'s result: every experiment run, the time it all took, and whether every claim held."""

    folder: str
    experiments: list[ExperimentResult]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.experiments)

    def to_dict(self) -> dict:
        return {
            "folder": self.folder,
            "seconds": self.seconds,
            "passed": self.passed,
            "experiments": [e.to_dict() for e in self.experiments],
        }


def list_experiments(folder=None) -> list[Experiment]:
    """Every experiment of the course folder, by name."""
    from dnncli.yamlfile import read_yaml

    folder = Path(folder) if folder is not None else default_folder()
    if not folder.is_dir():
        raise DnnError(f"{folder}: no course folder here (configs/course/ of a dnncli checkout); give --dir.")
    out = []
    for path in sorted(folder.glob("*.yaml")):
        mapping, _, text = read_yaml(path)
        kind = "sweep" if isinstance(mapping, dict) and all(k in mapping for k in SWEEP_MARKS) else "config"
        expect = mapping.get("expect") if isinstance(mapping, dict) else None
        if kind == "sweep":
            claims = [e.get("claim") for e in expect or [] if isinstance(e, dict) and e.get("claim")]
        else:
            claims = [expect["claim"]] if isinstance(expect, dict) and expect.get("claim") else []
        lesson, says = _header(text)
        out.append(Experiment(path.stem, path, kind, lesson, says, claims))
    if not out:
        raise DnnError(f"{folder}: no experiment (*.yaml) in it.")
    return out


def _header(text: str) -> tuple[str, str]:
    """The ``# Lesson:`` and ``# Says:`` lines of a file's opening comment (a ``#`` line after either goes on)."""
    found: dict[str, list[str]] = {"lesson": [], "says": []}
    current = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].strip()
        key = body.split(":", 1)[0].lower()
        if key in found and ":" in body:
            current = key
            found[key].append(body.split(":", 1)[1].strip())
        elif current is not None and body and not body.endswith(":") and line.startswith("#   "):
            found[current].append(body)
        else:
            current = None
    return " ".join(found["lesson"]), " ".join(found["says"])


def pick(experiments: list[Experiment], name: str) -> Experiment:
    for e in experiments:
        if e.name == name:
            return e
    names = [e.name for e in experiments]
    raise DnnError(f"no course experiment {name!r}.{suggest(name, names)} Experiments: {', '.join(names)}.")


def run_course(
    experiments: list[Experiment], out, folder: str = "", progress: Callable[[str], None] | None = None
) -> CourseReport:
    """Run each experiment in turn under ``out/<name>``; ``progress`` hears a line as each run or trial ends."""
    started = time.perf_counter()
    with _one_blas_thread():
        results = [run_experiment(e, Path(out) / e.name, progress) for e in experiments]
    return CourseReport(folder, results, time.perf_counter() - started)


def _one_blas_thread():
    """The course's networks are small: one BLAS thread trains them about as fast as two on a quiet machine, and
    several times faster on a busy one, where a library's threads that wait for a core spin (measured: 4 s against
    17 s for the dropout experiment at a load of 3 on 2 cores). With threadpoolctl where it is installed; else as is."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def run_experiment(exp: Experiment, out: Path, progress: Callable[[str], None] | None = None) -> ExperimentResult:
    from dnncli.experiment import config as config_mod
    from dnncli.experiment.run import Reporter, TrainingRun

    say = progress or (lambda line: None)
    started = time.perf_counter()
    if exp.kind == "config":
        config = config_mod.load(exp.path)
        if not config.resolved.get("expect"):
            raise DnnError(f"{exp.path}: a course experiment needs an expect: section.")
        result = TrainingRun.create(config, out=out, reporter=Reporter()).train()
        check = check_outcome(config.resolved["expect"], Outcome(out, result))
        say(f"{exp.name}: {result.status} after {result.epochs} epochs")
        return ExperimentResult(exp, out, time.perf_counter() - started, 1, check=check)
    trials = _run_sweep(exp, out, say)
    from dnncli.experiment.sweep import read_sweep

    comparisons = judge(read_sweep(exp.path).expect, trials)
    return ExperimentResult(exp, out, time.perf_counter() - started, len(trials), comparisons=comparisons)


def _run_sweep(exp: Experiment, out: Path, say: Callable[[str], None]) -> list[TrialRun]:
    """A course sweep's grid, each configuration with each seed, trained here in turn into ``out/trials/``."""
    from dnncli.experiment.run import Reporter, TrainingRun
    from dnncli.experiment.sweep import collect, grid, read_sweep

    spec = read_sweep(exp.path)
    if spec.method != "grid" or not spec.expect:
        raise DnnError(f"{exp.path}: a course sweep is a grid (method: grid) with an expect: list.")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.yaml", yaml.safe_dump(spec.raw | {"config": str(spec.config_path)}, sort_keys=False))
    trials = []
    for k, (params, repeat) in enumerate((p, r) for p in grid(spec) for r in range(spec.repeats)):
        run_dir = out / "trials" / f"t{k:03d}"
        config = spec.base.with_overrides(spec.overrides(params, repeat))
        started = time.perf_counter()
        result = TrainingRun.create(config, out=run_dir, reporter=Reporter()).train()
        trials.append(TrialRun(params, repeat, run_dir, result))
        record = _record(spec, run_dir.name, params, repeat, run_dir, result, time.perf_counter() - started)
        atomic_write_text(run_dir / "trial.json", dumps(record))
        say(f"{exp.name}: {label(params)}, seed {record['seed']}: {result.status} after {result.epochs} epochs")
    collect(spec, out)  # results.csv and best.yaml, as dnn sweep leaves them
    return trials


def _record(spec, trial_id: str, params: dict, repeat: int, run_dir: Path, result, seconds: float) -> dict:
    """A trial's ``trial.json``, as a sweep's trial writes it."""
    from dnncli.experiment.sweep.trial import as_float, best_index

    values = [as_float(r.get(spec.metric)) for r in result.history]
    best = best_index(values, spec.mode)
    finished = result.status in ("completed", "early_stopped")
    return {
        "id": trial_id,
        "params": params,
        "repeat": repeat,
        "seed": spec.base["seed"] + repeat,
        "run_dir": str(run_dir),
        "status": "completed" if finished else "failed",
        "reason": "" if finished else result.message.split(". ")[0],
        "metric": values[best] if best is not None else math.nan,
        "best_epoch": best + 1 if best is not None else None,
        "epochs": len(result.history),
        "seconds": seconds,
    }
