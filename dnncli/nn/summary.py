"""A model's summary as data: what ``keras.Model.summary()`` prints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SummaryRow:
    index: int
    name: str
    type: str
    output_shape: tuple
    params: int


@dataclass
class Summary:
    """What ``keras.Model.summary()`` shows, as data."""

    rows: list[SummaryRow]
    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable
