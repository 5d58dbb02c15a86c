"""The ONNX graph under construction, which every layer, activation and transform adds its ops to."""

from __future__ import annotations

import numpy as np

from dnncli.experiment.export.result import ExportStep


class Graph:
    """Nodes and initializers under construction; every tensor name unique, every op recorded under its stage."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes, self.initializers, self.steps = [], [], []
        self._names: set[str] = set()
        self.scope = "graph"

    @property
    def float32(self) -> bool:
        return self.dtype == np.float32

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def stage(self, description: str, scope: str) -> None:
        self.steps.append((description, []))
        self.scope = scope

    def const(self, value, what: str, dtype=None) -> str:
        """An initializer of the model's dtype (or ``dtype``), converted as NumPy converts it in the layers."""
        name = self.unique(f"{self.scope}.{what}")
        array = np.asarray(value).astype(dtype or self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs, **attrs) -> str:
        out = self.unique(f"{self.scope}/{op_type}")
        return self._node(op_type, inputs, out, out, attrs)

    def output(self, tensor: str, name: str) -> str:
        """Give the tensor an output's name: its producing node's output renamed, or an Identity."""
        last = self.nodes[-1] if self.nodes else None
        if last is not None and last.output[0] == tensor:
            last.output[0] = name
            return name
        return self._node("Identity", [tensor], name, self.unique(f"{name}/Identity"), {})

    def summary(self) -> tuple[ExportStep, ...]:
        """Each stage in order with the ops it became."""
        return tuple(ExportStep(stage, tuple(ops)) for stage, ops in self.steps)

    def _node(self, op_type: str, inputs, out: str, name: str, attrs: dict) -> str:
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=name, **attrs))
        self.steps[-1][1].append(op_type)
        return out
