"""The sweep file: its keys checked, its parameters read, every override tried on the base config before any trial."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from dnncli.errors import DnnError, check_choice, check_int, suggest
from dnncli.experiment.expect.compare import parse_comparisons
from dnncli.train import metrics as metrics_mod

METHODS = ("grid", "random", "tpe")
SWEEP_KEYS = (
    "config",
    "metric",
    "mode",
    "method",
    "trials",
    "repeats",
    "seed",
    "parameters",
    "early_stopping",
    "resources_per_trial",
    "expect",
)


class SweepSpec:
    """A validated sweep file (its schema, ``dnn schema --sweep``, is read from the checks below and this list).

    Parameters
    ----------
    config : str
        The base config, relative to the sweep file.
    metric : str, default="val_loss"
        The logged column the search ranks trials by (the base config must log it).
    mode : {"min", "max"}
        Whether lower or higher is better; default: by the metric.
    method : {"grid", "random", "tpe"}, default="grid"
        grid: every combination of values; random or tpe (Optuna): ``trials`` samples.
    trials : int, default=10
        Samples drawn by random or tpe.
    repeats : int, default=1
        Seeds each configuration is trained with.
    seed : int, default=0
        Seeds the search.
    parameters : mapping
        Dotted config keys (as --set takes them) to {values: [...]} or {min, max, log}.
    early_stopping : mapping or None
        ASHA: {method: asha, grace_epochs, reduction_factor}; stops trials that lag.
    resources_per_trial : mapping, default={"cpu": 1}
        What Ray gives each trial: {cpu: N}, N CPUs, and the trial runs N BLAS threads.
    expect : list or None
        Comparisons of trials by their parameters, judged when the sweep ends: each entry's keys are those of
        ``dnncli.experiment.expect.compare.Comparison`` (measure, lower or higher, than, claim).
    """

    def __init__(self, path: Path, raw: dict, lines: dict | None = None):
        from dnncli.experiment.config import load

        self.path = path
        self.raw = raw
        for key in raw:
            if key not in SWEEP_KEYS:
                raise DnnError(f"{path}: sweep has no key {key!r}.{suggest(key, SWEEP_KEYS)}")
        if "config" not in raw or "parameters" not in raw:
            raise DnnError(f"{path}: a sweep needs 'config' (the base config) and 'parameters'.")
        self.config_path = (path.parent / str(raw["config"])).resolve()
        self.base = load(self.config_path)
        self.metric = raw.get("metric", "val_loss")
        if not isinstance(self.metric, str):
            raise DnnError(f"{path}: metric must be a history column name. Received: {self.metric!r}")
        self.mode = check_choice(raw.get("mode", metrics_mod.direction(self.metric)), "mode", ("min", "max"))
        self.method = check_choice(raw.get("method", "grid"), "method", METHODS)
        self.trials = check_int(raw.get("trials", 10), "trials")
        self.repeats = check_int(raw.get("repeats", 1), "repeats")
        self.seed = check_int(raw.get("seed", 0), "seed", minimum=0, maximum=2**32 - 1)
        self.parameters = self._parameters(raw["parameters"])
        self.early_stopping = self._early_stopping(raw.get("early_stopping"))
        self.cpus_per_trial = self._resources(raw.get("resources_per_trial"))
        self._check_metric()
        self._check_overrides()
        self.expect = self._expect(raw.get("expect"), lines or {})

    def _expect(self, spec, lines: dict) -> list:
        """The comparisons of ``expect:``, checked against the parameters and the base config; an error names its
        file, line and key."""
        from dnncli.experiment.config import locate

        try:
            return parse_comparisons(spec, self.parameters, self.base.logged_columns(), self.base["metrics"])
        except DnnError as err:
            raise locate(err.at("expect"), self.path, lines, []) from None

    def _parameters(self, spec) -> dict:
        if not isinstance(spec, dict) or not spec:
            raise DnnError(f"{self.path}: parameters must map dotted keys to {{values: [...]}} or {{min, max}}.")
        out = {}
        for key, p in spec.items():
            where = f"{self.path}: parameters.{key}"
            if not isinstance(p, dict) or not (set(p) <= {"values", "min", "max", "log"}):
                raise DnnError(f"{where}: give {{values: [...]}} or {{min: a, max: b, log: true|false}}.")
            if "values" in p:
                if not isinstance(p["values"], list) or not p["values"]:
                    raise DnnError(f"{where}.values must be a non-empty list.")
                out[key] = {"values": p["values"]}
                continue
            if "min" not in p or "max" not in p:
                raise DnnError(f"{where}: a range needs min and max.")
            low, high, log = p["min"], p["max"], p.get("log", False)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
                raise DnnError(f"{where}: min must be a number below max. Received: min={low!r}, max={high!r}")
            if log and low <= 0:
                raise DnnError(f"{where}: a log range needs min > 0. Received: min={low!r}")
            if self.method == "grid":
                raise DnnError(f"{where}: method grid takes values; ranges need method random or tpe.")
            integer = isinstance(low, int) and isinstance(high, int)
            out[key] = {"min": low, "max": high, "log": bool(log), "int": integer}
        return out

    def _early_stopping(self, spec) -> dict | None:
        if spec is None:
            return None
        if not isinstance(spec, dict) or spec.get("method", "asha") != "asha":
            raise DnnError(f"{self.path}: early_stopping must be {{method: asha, grace_epochs: N}}. Received: {spec!r}")
        unknown = set(spec) - {"method", "grace_epochs", "reduction_factor"}
        if unknown:
            raise DnnError(f"{self.path}: early_stopping has no key {sorted(unknown)[0]!r}.")
        return {
            "grace_epochs": check_int(spec.get("grace_epochs", 1), "early_stopping.grace_epochs"),
            "reduction_factor": check_int(spec.get("reduction_factor", 3), "early_stopping.reduction_factor", 2),
        }

    def _resources(self, spec) -> int:
        """The CPUs of ``resources_per_trial`` (Ray's own word for it): 1 unless given."""
        if spec is None:
            return 1
        if not isinstance(spec, dict) or set(spec) - {"cpu"}:
            raise DnnError(
                f"{self.path}: resources_per_trial must be {{cpu: N}}, the CPUs Ray gives each trial (its BLAS"
                f" threads). Received: {spec!r}"
            )
        return check_int(spec.get("cpu", 1), "resources_per_trial.cpu")

    def _check_metric(self) -> None:
        self.base.check_logged(self.metric, f"{self.path}: metric", self.config_path.name)

    def _check_overrides(self) -> None:
        """Every value (grid) or both ends of every range, applied to the base config, before any trial."""
        for key, p in self.parameters.items():
            for value in p["values"] if "values" in p else (p["min"], p["max"]):
                try:
                    self.base.with_overrides([f"{key}={_yaml(value)}"])
                except DnnError as err:
                    raise DnnError(f"{self.path}: parameters.{key}: {err.message}") from None

    def overrides(self, params: dict, repeat: int) -> list[str]:
        out = [f"{k}={_yaml(v)}" for k, v in params.items()]
        return out + [f"seed={self.base['seed'] + repeat}"]


def _yaml(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def read_sweep(path) -> SweepSpec:
    from dnncli.experiment.config import read_config_file

    path = Path(path)
    raw, lines = read_config_file(path)  # the same limits and errors as a config
    return SweepSpec(path, raw, lines)


def grid(spec: SweepSpec) -> list[dict]:
    """Every combination of the parameters' values, in the file's order."""
    keys = list(spec.parameters)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(spec.parameters[k]["values"] for k in keys))]
