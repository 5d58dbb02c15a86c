"""The ``monitor:`` section of a config: how often the gradient monitor records, the flags' thresholds and windows,
and the columns of ``gradients.csv``."""

from __future__ import annotations

from dnncli.errors import DnnError, check_float, check_int
from dnncli.registry import build_section, section_config

STEP_FIELDS = (
    "epoch",
    "step",
    "layer_index",
    "layer",
    "grad_norm",
    "grad_mean_abs",
    "grad_max",
    "weight_norm",
    "update_ratio",
    "act_mean",
    "act_std",
    "dead_fraction",
    "saturated_fraction",
    "noise_trace",  # the gradient noise scale's tr(Sigma) and |G|^2 estimates for the layer (diagnostics/noise.py)
    "signal_sq",
    "act_hist",  # the activations' counts on fixed bins (diagnostics/histograms.py)
)


class MonitorSettings:
    """The ``monitor:`` section: how often to record, and the flags' thresholds and windows (see ``rules.py``).

    Parameters
    ----------
    every : int or None, default=None
        Record the full statistics every K steps; None: every step for models of up to 50,000 parameters, else 20.
    vanishing_ratio, vanishing_floor, exploding_norm, exploding_growth, exploding_min : float
        The thresholds of ``vanishing``, ``exploding`` (and of ``collapsed``'s drop, ``vanishing_ratio``).
    dead_fraction : float, default=0.5
        Fraction of a relu layer's units dead (off for every sample) that raises ``dead``.
    saturated_fraction : float, default=0.4
        Fraction of a sigmoid or tanh layer's outputs within 1% of a bound that raises ``saturated``.
    stalled_ratio : float, default=1e-5
        A step that moves a layer's kernel by less than this fraction of its norm (|delta W| / |W|; about 1e-3
        is usual) raises ``stalled`` where nothing else explains it.
    smooth : int, default=5
        Records in each rule's running median.
    growth_window : int, default=20
        Records the growth rule looks back over; larger than ``smooth``.
    collapse_records : int, default=5
        Records at 0 in a row that make a collapse.
    """

    def __init__(
        self,
        every: int | None = None,
        vanishing_ratio: float = 1e-3,
        vanishing_floor: float = 1e-7,
        exploding_norm: float = 1e3,
        exploding_growth: float = 10.0,
        exploding_min: float = 1.0,
        dead_fraction: float = 0.5,
        saturated_fraction: float = 0.4,
        stalled_ratio: float = 1e-5,
        smooth: int = 5,
        growth_window: int = 20,
        collapse_records: int = 5,
    ):
        self.every = None if every is None else check_int(every, "monitor.every")
        for name, value in (
            ("vanishing_ratio", vanishing_ratio),
            ("vanishing_floor", vanishing_floor),
            ("exploding_norm", exploding_norm),
            ("exploding_growth", exploding_growth),
            ("exploding_min", exploding_min),
            ("stalled_ratio", stalled_ratio),
        ):
            setattr(self, name, check_float(value, f"monitor.{name}", 0.0, low_open=True))
        self.dead_fraction = check_float(dead_fraction, "monitor.dead_fraction", 0.0, 1.0)
        self.saturated_fraction = check_float(saturated_fraction, "monitor.saturated_fraction", 0.0, 1.0)
        self.smooth = check_int(smooth, "monitor.smooth")
        self.growth_window = check_int(growth_window, "monitor.growth_window")
        self.collapse_records = check_int(collapse_records, "monitor.collapse_records")
        if self.growth_window <= self.smooth:
            raise DnnError(
                "monitor.growth_window must be larger than monitor.smooth (the growth rule compares a running"
                f" median with those before it). Received: growth_window={growth_window}, smooth={smooth}",
                ("growth_window",),
            )


def resolve_monitor(spec) -> dict:
    """Validate a ``monitor:`` mapping and fill in every default."""
    try:
        return section_config(build_section(MonitorSettings, spec, "monitor"))
    except DnnError as err:
        raise err.at("monitor") from None
