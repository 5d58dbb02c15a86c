"""Tune's trial events to the sweep's display. Imported only when a sweep runs (it needs Ray).

The callback is a module-level class holding no state: Tune pickles its callbacks with the experiment, and
the display (a terminal, a stream) must stay out of that.
"""

from __future__ import annotations

from ray import tune

VIEW: dict = {}  # the display and metric of the sweep running in this process


class TrialEvents(tune.Callback):
    """Hands each trial's epochs and end to the display (``result``, ``ended``)."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        params = {k: v for k, v in trial.config.items() if k != "repeat"}
        VIEW["view"].result(trial.trial_id, params, result.get("epoch"), result.get(VIEW["metric"]))

    def on_trial_complete(self, iteration, trials, trial, **info):
        VIEW["view"].ended(trial.trial_id, "done")

    def on_trial_error(self, iteration, trials, trial, **info):
        VIEW["view"].ended(trial.trial_id, "error")
