"""What ``dnn inspect-gradients`` reports, as data: each layer's gradient norms, flags and numbers, the advice, and
what ``--try-advice`` and ``--write-config`` add; ``to_dict()`` is its ``--json``.

Built by ``experiment.inspection`` (a config probed, or a run's records replayed) and read, by attribute, by the
views, the doctor's gradient-flow check (``checkup``), ``--try-advice``, ``dnn plot``, ``expect:`` and the diagnosis
corpus scorer. It lives on the diagnostics floor, the lowest that reads it, so that every reader may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnncli.diagnostics.flags import FlagState


@dataclass(frozen=True)
class FlagInfo:
    """One raised flag: where it began, how long it held, and its numbers."""

    flag: str
    onset_step: int
    onset_epoch: int
    last_step: int
    last_epoch: int
    records: int  # records at which it held ...
    of_records: int  # ... of the records the tracker took
    episodes: int  # separate stretches
    active_at_end: bool
    transient: bool  # raised at initialization and cleared within a few records
    peak: float  # the worst value of the flag's measure
    detail: str  # "dead: ... from step 3 to the end (38 of 40 records)"

    @classmethod
    def of(cls, f: FlagState, total: int, unit: str) -> FlagInfo:
        """The flag ``f`` of a tracker that took ``total`` records, its steps counted in ``unit`` (step or epoch)."""
        return cls(
            flag=f.name,
            onset_step=f.onset_step,
            onset_epoch=f.onset_epoch,
            last_step=f.last_step,
            last_epoch=f.last_epoch,
            records=f.records,
            of_records=total,
            episodes=f.episodes,
            active_at_end=f.active,
            transient=f.transient,
            peak=f.peak,
            detail=f"{f.name}: {f.describe(unit, total)}",
        )

    def to_dict(self) -> dict:
        return {
            "flag": self.flag,
            "onset_step": self.onset_step,
            "onset_epoch": self.onset_epoch,
            "last_step": self.last_step,
            "last_epoch": self.last_epoch,
            "records": self.records,
            "of_records": self.of_records,
            "episodes": self.episodes,
            "active_at_end": self.active_at_end,
            "transient": self.transient,
            "peak": self.peak,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class LayerReport:
    """One watched layer: its kernel gradient norm at each column of the report, its flags, its mean numbers
    (None where not measured: a dead fraction of a layer that is not relu, a step not yet taken)."""

    index: int  # position in the model's layers
    name: str
    activation: str
    grad_norm: list  # one per column of InspectionReport.steps (None: an epoch without a record)
    flag_info: list[FlagInfo]  # every flag raised, in the order raised
    weight_norm: float | None  # at the last record
    update_ratio: float | None
    dead_fraction: float | None
    saturated_fraction: float | None

    @property
    def flags(self) -> list[str]:
        """The lasting flags' names (transient ones aside)."""
        return [f.flag for f in self.flag_info if not f.transient]

    @property
    def transient(self) -> list[str]:
        """The names of the flags raised at initialization and soon cleared."""
        return [f.flag for f in self.flag_info if f.transient]

    @property
    def details(self) -> list[str]:
        """Each flag's line: its numbers, onset and extent."""
        return [f.detail for f in self.flag_info]

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "activation": self.activation,
            "grad_norm": self.grad_norm,
            "flags": self.flags,
            "transient": self.transient,
            "details": self.details,
            "flag_info": [f.to_dict() for f in self.flag_info],
            "weight_norm": self.weight_norm,
            "update_ratio": self.update_ratio,
            "dead_fraction": self.dead_fraction,
            "saturated_fraction": self.saturated_fraction,
        }


@dataclass(frozen=True)
class NonFinite:
    """Where the probe (or the run) stopped on a non-finite value."""

    stage: str  # "forward activation", "loss", ...
    layer: int | None
    step: int
    message: str

    def to_dict(self) -> dict:
        return {"stage": self.stage, "layer": self.layer, "step": self.step, "message": self.message}


@dataclass(frozen=True)
class NoiseScale:
    """The gradient noise scale over the records: the steps' estimates summed, then divided (``noise.py``)."""

    b_simple: float | None
    trace: float
    signal: float
    records: int  # the steps measured

    def to_dict(self) -> dict:
        return {"b_simple": self.b_simple, "trace": self.trace, "signal": self.signal, "records": self.records}


@dataclass(frozen=True)
class LossSpan:
    """The mean batch loss over the first and the last tenth of a probe's steps (None: none was finite); the data
    loss (no penalty) over the last tenth, and an uninformed model's (ln C for C classes; None where unknown)."""

    first: float | None
    final: float | None
    final_data: float | None = None
    uninformed: float | None = None

    def to_dict(self) -> dict:
        return {"first": self.first, "final": self.final, "final_data": self.final_data, "uninformed": self.uninformed}

    @property
    def knows_nothing(self) -> bool:
        """The data loss ends no lower than an uninformed model's: the network has learned nothing yet."""
        if self.uninformed is None or self.final_data is None:
            return False
        return self.final_data >= self.uninformed


@dataclass(frozen=True)
class InspectionReport:
    """What ``dnn inspect-gradients`` found.

    Attributes
    ----------
    source : str
        ``steps`` (a config probed for some steps) or ``epochs`` (a run's records read).
    unit : str
        What ``steps`` counts: ``step`` or ``epoch``.
    steps : list of int
        The report's columns: the steps (or epochs) recorded.
    layers : list of LayerReport
        The watched layers, in the model's order.
    advice : list of dict
        The advice on the flags, causes first (``Advice.to_dict()``: text, set, command, ...).
    nonfinite : NonFinite or None
        Where the probe or the run stopped on a non-finite value.
    noise_scale : NoiseScale
    loss, steps_run, steps_planned, skipped_batches
        A probed config's loss at its start and end, its steps run and planned, its batches skipped; None for a
        run read (and absent from ``to_dict()``).
    tried : list of dict or None
        ``--try-advice``: each item's outcome, ranked (``cure.Outcome.to_dict()``); None without it.
    tried_steps : int or None
        ``--try-advice``: the steps each item was tried over.
    write_config : bool
        ``--write-config`` was given ...
    written : str or None
        ... and wrote this file; None where no item helped.
    """

    source: str
    unit: str
    steps: list[int]
    layers: list[LayerReport]
    advice: list[dict]
    nonfinite: NonFinite | None
    noise_scale: NoiseScale
    loss: LossSpan | None = None
    steps_run: int | None = None
    steps_planned: int | None = None
    skipped_batches: int | None = None
    tried: list[dict] | None = None
    tried_steps: int | None = None
    write_config: bool = False
    written: str | None = None

    def to_dict(self) -> dict:
        """As ``--json`` prints it: the keys a probe, ``--try-advice`` or ``--write-config`` did not add, absent."""
        out = {
            "source": self.source,
            "unit": self.unit,
            "steps": self.steps,
            "layers": [layer.to_dict() for layer in self.layers],
            "advice": self.advice,
            "nonfinite": self.nonfinite.to_dict() if self.nonfinite is not None else None,
            "noise_scale": self.noise_scale.to_dict(),
        }
        if self.loss is not None:
            out["loss"] = self.loss.to_dict()
        if self.steps_run is not None:
            out["steps_run"] = self.steps_run
        if self.steps_planned is not None:
            out["steps_planned"] = self.steps_planned
        if self.skipped_batches is not None:
            out["skipped_batches"] = self.skipped_batches
        if self.tried is not None:
            out |= {"tried": self.tried, "tried_steps": self.tried_steps}
        if self.write_config:
            out["written"] = self.written
        return out
