"""A run checked against its config's ``expect:``: one verdict per expectation (what was expected, what was
measured, pass or fail). ``dnn train`` checks the run it just trained, ``dnn check RUN_DIR`` a finished one from its
files; both read the same ``Outcome``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from dnncli.errors import DnnError
from dnncli.experiment.expect.bounds import parse_bound, parse_by_epoch
from dnncli.experiment.expect.measures import FAMILIES, Measure, Outcome, measure


@dataclass
class Verdict:
    """One expectation judged: ``expected`` as written (``test.accuracy >= 0.9``), ``measured`` as read, and why."""

    expected: str
    measured: str | None  # None: the value, a number the view formats
    passed: bool
    value: float | None = None
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CheckReport:
    """Every verdict on one run; ``passed`` when all hold."""

    run_dir: str
    status: str
    verdicts: list[Verdict] = field(default_factory=list)
    claim: str | None = None

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def status_expected(self) -> bool:
        """Whether the run ended as an expectation said it must (``status: nonfinite``: exit by the verdicts)."""
        return any(v.expected.startswith("status:") and v.passed for v in self.verdicts)

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    def to_dict(self) -> dict:
        return {
            "run_dir": self.run_dir,
            "status": self.status,
            "claim": self.claim,
            "passed": self.passed,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def check_outcome(expect: dict, outcome: Outcome) -> CheckReport:
    """Judge every expectation of a resolved ``expect:`` section on ``outcome``."""
    verdicts = []
    for family, value in expect.items():
        if family in FAMILIES and family != "flags":
            for name, text in value.items():
                verdicts.append(_bounded(Measure(family, name), parse_bound(text, family), outcome))
        elif family == "reaches":
            verdicts += [_reaches(name, text, outcome) for name, text in value.items()]
        elif family == "flags":
            verdicts += _flags(value, outcome)
        elif family == "status":
            verdicts.append(_status(value, outcome))
    return CheckReport(str(outcome.run_dir), outcome.status, verdicts, expect.get("claim"))


def check_run_dir(run_dir) -> CheckReport:
    """``dnn check RUN_DIR``: the run's own ``config.yaml``'s expectations, on the files the run wrote."""
    from dnncli.experiment import config as config_mod

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise DnnError(f"{run_dir}: not a run directory (no config.yaml).")
    config = config_mod.load(run_dir / "config.yaml", check_paths=False)
    expect = config.resolved.get("expect")
    if not expect:
        raise DnnError(
            f"{run_dir}: its config has no expect: section, so there is nothing to check. Add one to the config"
            " (such as expect: {test.accuracy: '>= 0.9', flags: none}) and train it again."
        )
    outcome = Outcome(run_dir)
    if outcome.status == "unfinished":
        raise DnnError(f"{run_dir}: the run has not finished; resume it with dnn train --resume {run_dir}.")
    return check_outcome(expect, outcome)


def _shown(value) -> str | None:
    """What a view writes for a value a number cannot show (None: the number itself, formatted by the view)."""
    if value is None:
        return "-"
    return "never" if value == float("inf") else None


def _bounded(m: Measure, bound, outcome: Outcome) -> Verdict:
    value = measure(m, outcome)
    detail = ""
    if value is None:
        detail = f"not measured: the run ended {outcome.status}" + (
            " with no test split" if m.family == "test" and outcome.finished else ""
        )
    return Verdict(f"{m.text()} {bound.text()}", _shown(value), bound.holds(value), value, detail)


def _reaches(name: str, text: str, outcome: Outcome) -> Verdict:
    bound, epoch = parse_by_epoch(text, name)
    first = measure(Measure("epochs_to", name, bound), outcome)
    reached = first is not None and first <= epoch
    measured = "never" if first is None or first == float("inf") else f"epoch {int(first)}"
    return Verdict(f"{name} {bound.text()} by epoch {epoch}", measured, reached, first)


def _layer_names(outcome: Outcome, flag: str) -> list[tuple[int, str]]:
    return sorted({(f["index"], f["layer"]) for f in outcome.flags if f["flag"] == flag and not f.get("transient")})


def _flags(spec, outcome: Outcome) -> list[Verdict]:
    if spec == "none":
        raised = sorted({f["flag"] for f in outcome.flags if not f.get("transient")})
        lines = [f"{flag} on {', '.join(n for _, n in _layer_names(outcome, flag))}" for flag in raised]
        return [Verdict("flags: none", "; ".join(lines) or "none", not raised, float(len(raised)))]
    out = []
    for flag, want in spec.items():
        on = _layer_names(outcome, flag)
        measured = ", ".join(n for _, n in on) or "no layer"
        if want == "none":
            out.append(Verdict(f"flags.{flag}: none", measured, not on, float(len(on))))
        elif want == "any":
            out.append(Verdict(f"flags.{flag}: any", measured, bool(on), float(len(on))))
        elif isinstance(want, list):
            hit = {i for i, _ in on} | {n for _, n in on}
            missing = [str(layer) for layer in want if layer not in hit]
            detail = f"not raised on {', '.join(missing)}" if missing else ""
            expected = f"flags.{flag} on {', '.join(map(str, want))}"
            out.append(Verdict(expected, measured, not missing, float(len(on)), detail))
        else:
            bound = parse_bound(want, flag)
            out.append(
                Verdict(
                    f"flags.{flag} {bound.text()} layers",
                    f"{len(on)} ({measured})",
                    bound.holds(len(on)),
                    float(len(on)),
                )
            )
    return out


def _status(want, outcome: Outcome) -> Verdict:
    wanted = want if isinstance(want, list) else [want]
    status = outcome.status
    ok = status in wanted or ("finished" in wanted and outcome.finished)
    return Verdict(f"status: {' or '.join(wanted)}", status, ok)
