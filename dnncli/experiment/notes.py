"""Warnings on a config that is valid but likely not what its author meant (a batch size batching ignores, a loss
that does not fit the output): each a ``DnnError`` with its key, located and shown as one ``warning:`` line."""

from __future__ import annotations

from collections.abc import Mapping

from dnncli.errors import DnnError
from dnncli.experiment.resolve import output_activation
from dnncli.nn import losses


def config_notes(raw: dict, mapping: Mapping) -> list[DnnError]:
    """What a config asks for that will not happen as written: warnings (Keras warns of the same and goes on),
    each with the key it is about."""
    notes = []
    loss = losses.get(raw["loss"])
    act = output_activation(raw)
    if loss.logits_activation is not None and loss.from_logits and act in ("softmax", "sigmoid"):
        notes.append(
            DnnError(
                f"{loss.name} received from_logits: true, but the output layer applies {act}, so its outputs are"
                " probabilities, not logits; set from_logits: false, or remove the output activation.",
                ("loss", "from_logits"),
            )
        )
    if loss.logits_activation is not None and not loss.from_logits and act == "linear":
        notes.append(
            DnnError(
                f"{loss.name} expects probabilities (from_logits: false), but the output layer has no activation,"
                f" so its outputs are logits; set loss: {{name: {loss.name}, from_logits: true}}, or give the output"
                f" layer activation: {loss.logits_activation}.",
                ("loss",),
            )
        )
    written = mapping.get("training")
    t = raw["training"]
    size = written.get("batch_size") if isinstance(written, Mapping) else None
    if size is not None and t["batching"] != "mini-batch" and not (t["batching"] == "stochastic" and size == 1):
        every = "all the training samples" if t["batching"] == "batch" else "one sample"
        notes.append(
            DnnError(
                f"{size} is ignored with batching: {t['batching']} (every update uses {every});"
                " remove it, or use batching: mini-batch.",
                ("training", "batch_size"),
            )
        )
    return notes
