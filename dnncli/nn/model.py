"""The sequential model: layers in order, weights in one contiguous buffer.

All trainable weights are views into one flat vector, and their gradients
views into another, so that an optimizer can update every parameter in a few
whole-array passes instead of a Python loop over variables.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dnncli.errors import DnnError, check_int, suggest
from dnncli.nn import layers as layers_mod
from dnncli.nn import losses as losses_mod
from dnncli.nn.summary import Summary, SummaryRow

DTYPES = ("float32", "float64")
WEIGHT_ORDER = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")


@dataclass
class BatchLoss:
    """The loss of one batch: mean data loss and the regularization penalty."""

    data: float
    penalty: float

    @property
    def total(self) -> float:
        return self.data + self.penalty


def _check_dtype(dtype) -> np.dtype:
    if dtype not in DTYPES:
        raise DnnError(f"dtype must be one of {', '.join(DTYPES)}. Received: {dtype!r}", ("dtype",))
    return np.dtype(dtype)


def _stack(layers, input_shape, dtype) -> tuple[list, tuple, tuple]:
    """(layer objects with shapes and names, input shape, output shape) of a spec; no weight is allocated.

    Each layer is built (its output shape and the weights it declares), named ``dense``, ``dense_1``, ...
    where it has no name, and checked against the shape of its input.
    """
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = [input_shape]
    if not isinstance(input_shape, (list, tuple)) or not input_shape:
        raise DnnError(f"input_shape must be a list of positive integers. Received: {input_shape!r}", ("input_shape",))
    for i, d in enumerate(input_shape):
        try:
            check_int(d, f"input_shape[{i}]")
        except DnnError as err:
            raise DnnError(err.message, ("input_shape", i)) from None
    input_shape = tuple(int(d) for d in input_shape)
    if not isinstance(layers, (list, tuple)) or not layers:
        raise DnnError(f"layers must be a non-empty list. Received: {layers!r}", ("layers",))
    built = [layers_mod.get(spec, ("layers", i)) for i, spec in enumerate(layers)]
    shape = input_shape
    counts: dict[str, int] = {}
    for i, layer in enumerate(built):
        try:
            shape = layer.build(shape, dtype)
        except DnnError as err:
            raise err.at("layers", i) from None
        layer.name = _named(layer.name, layer.type_name, counts)
    names = [layer.name for layer in built]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise DnnError(f"layer name {name!r} is used twice.", ("layers", i, "name"))
    # exact counts (Python integers): weights, their gradients and optimizer moments take several copies
    n_params = sum(math.prod(s.shape) for layer in built for s in layer.specs)
    if n_params * dtype.itemsize * 4 > memory_bytes():
        raise DnnError(
            f"the model has {_count(n_params)} parameters: too many for this machine's memory"
            f" ({memory_bytes() / 2**30:.0f} GiB) in {dtype.name}.",
            ("layers",),
        )
    return built, input_shape, shape


def _named(name: str | None, type_name: str, counts: dict[str, int]) -> str:
    """A layer's name: its own, else its type counted so far (``dense``, ``dense_1``, ...); ``counts`` counted on."""
    n = counts.get(type_name, 0)
    counts[type_name] = n + 1
    return name if name is not None else type_name if n == 0 else f"{type_name}_{n}"


def layer_names(layers: list[dict]) -> list[str]:
    """The names of a resolved model's layers (``Sequential.resolve``'s ``layers``), as the built model has them."""
    counts: dict[str, int] = {}
    return [_named(spec.get("name"), spec["type"], counts) for spec in layers]


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no limit known
        return 1 << 62


class Sequential:
    """A stack of layers built for an input shape.

    Parameters
    ----------
    layers : list of Layer or layer specs
        In order; specs are ``{type: dense, units: 64, ...}`` mappings.
    input_shape : sequence of int
        Shape of one sample, without the batch axis (``[28, 28]``).
    dtype : {"float32", "float64"}, default="float32"
        Dtype of weights, activations and gradients.
    seed : int or None, default=None
        Seed of the initializers and dropout generators that have none of their own.
    """

    def __init__(self, layers, input_shape, dtype: str = "float32", seed: int | None = None):
        self.dtype = _check_dtype(dtype)
        self.seed = None if seed is None else check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
        self.layers, self.input_shape, self.output_shape = _stack(layers, input_shape, self.dtype)
        self._build()

    @staticmethod
    def resolve(layers, input_shape, dtype: str = "float32") -> tuple[dict, tuple]:
        """Check a model spec without allocating a weight: (its config, every default filled in; output shape)."""
        layers, input_shape, output_shape = _stack(layers, input_shape, _check_dtype(dtype))
        return {"input_shape": list(input_shape), "layers": [layer.get_config() for layer in layers]}, output_shape

    # construction ------------------------------------------------------------
    def _build(self) -> None:
        specs = [(layer, s) for layer in self.layers for s in layer.specs]
        n_train = sum(int(np.prod(s.shape)) for _, s in specs if s.trainable)
        try:
            self.flat_weights = np.zeros(n_train, self.dtype)
            self.flat_gradients = np.zeros(n_train, self.dtype)
        except (MemoryError, ValueError):
            raise DnnError(f"the model has {n_train:,} trainable parameters: too many to allocate.") from None
        self.trainable_weights: list[np.ndarray] = []
        self.gradients: list[np.ndarray] = []
        self.variable_names: list[str] = []
        self._regularized: list[tuple] = []
        offset = 0
        for layer, s in specs:
            size = int(np.prod(s.shape))
            if s.trainable:
                w = self.flat_weights[offset : offset + size].reshape(s.shape)
                g = self.flat_gradients[offset : offset + size].reshape(s.shape)
                offset += size
                layer.grads[s.name] = g
                self.trainable_weights.append(w)
                self.gradients.append(g)
                self.variable_names.append(f"{layer.name}.{s.name}")
                if s.regularizer is not None:
                    self._regularized.append((s.regularizer, w, g))
            else:
                w = np.zeros(s.shape, self.dtype)
            layer.params[s.name] = w
        # the first layers, up to and including the first with trainable weights, need no dX
        below_trainable = False
        for layer in self.layers:
            layer.needs_input_grad = below_trainable
            below_trainable = below_trainable or bool(layer.grads)
        self.outputs: list[np.ndarray | None] = [None] * len(self.layers)
        self._normalizers = [layer for layer in self.layers if hasattr(layer, "stats_nonfinite")]
        self.output_layer = self.layers[-1]
        self.output_activation = getattr(self.output_layer, "activation", None)
        if self.output_activation is not None:
            self.output_layer.keep_logits = True
        self.initialize(self.seed)

    def initialize(self, seed: int | None = None) -> None:
        """(Re)draw every weight from its initializer and reseed dropout.

        Each layer gets its own child of ``SeedSequence(seed)``, so adding a layer
        at the end does not change the weights drawn for those before it.
        """
        children = np.random.SeedSequence(seed).spawn(len(self.layers))
        for layer, child in zip(self.layers, children):
            rng = np.random.default_rng(child)
            for s in layer.specs:
                layer.params[s.name][...] = s.initializer(s.shape, self.dtype, rng)
            layer.check_initial_weights()
            layer.seed_generators(rng)

    # maths -------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run every layer; the result is a buffer reused by the next call."""
        outputs = self.outputs
        for i, layer in enumerate(self.layers):
            x = outputs[i] = layer.forward(x, training)
        return x

    def find_nonfinite(self, loss_value: float) -> tuple[str, int | None]:
        """After a batch went wrong: (stage, layer index) of the first NaN or infinity.

        Looks, in order, at the weights (a previous update), the batch
        statistics a batch normalization layer could not fold into its moving
        statistics, each layer's output of this batch (forward activation), the loss, and the
        gradients from the last layer down. Returns ("unknown", None) if all
        of them are finite.
        """
        for i, layer in enumerate(self.layers):
            if any(not np.isfinite(w).all() for w in layer.params.values()):
                return "update", i
        # in the order of the forward pass: a layer's batch statistics come from the outputs before it
        for i, (layer, out) in enumerate(zip(self.layers, self.outputs)):
            if getattr(layer, "stats_nonfinite", False):
                return "moving statistics", i
            if out is not None and not np.isfinite(out).all():
                return "forward activation", i
        if not math.isfinite(loss_value):
            return "loss", None
        for i in range(len(self.layers) - 1, -1, -1):
            if any(not np.isfinite(g).all() for g in self.layers[i].grads.values()):
                return "gradient", i
        return "unknown", None

    def state_nonfinite(self) -> bool:
        """Whether a batch normalization layer's last training batch had non-finite statistics."""
        return any(layer.stats_nonfinite for layer in self._normalizers)

    def backward(self, dy: np.ndarray, skip_output_activation: bool = False) -> None:
        """Back-propagate ``dL/d(output)`` (or ``dL/dZ`` of the output layer) and fill the gradients."""
        layers = self.layers
        if skip_output_activation:
            dy = layers[-1].backward(dy, skip_activation=True)
            layers = layers[:-1]
        for layer in reversed(layers):
            if dy is None:
                break
            dy = layer.backward(dy)

    def penalty(self) -> float:
        """Sum of the regularization penalties of all weights."""
        return sum(reg.penalty(w) for reg, w, _ in self._regularized)

    def compute_gradients(self, x, y, loss, sample_weight=None) -> tuple[BatchLoss, list[np.ndarray]]:
        """Forward and backward over one batch in training mode.

        Parameters
        ----------
        x : ndarray
            Inputs, of the model's dtype.
        y : ndarray
            Targets prepared by ``loss.prepare_targets``.
        loss : Loss or str
            The data loss; the regularization penalty is added to it.
        sample_weight : ndarray or None, default=None
            One weight per sample of the batch, applied to its data loss and gradient (not to the penalty).

        Returns
        -------
        loss : BatchLoss
            Mean data loss of the batch and the penalty.
        grads : list of ndarray
            Views into ``flat_gradients``, in ``trainable_weights`` order.
        """
        loss = losses_mod.get(loss)
        out = self.last_output = self.forward(x, training=True)
        if self._fused(loss):
            # softmax/sigmoid + cross-entropy: loss and dL/dZ straight from the logits
            Z = self.output_layer.logits
            data = loss.logits_forward(y, Z, out, sample_weight=sample_weight)
            dZ = loss.logits_backward(
                y, Z, out, out=self.output_layer._buffer("dlogits", Z.shape), sample_weight=sample_weight
            )
            self.backward(dZ, skip_output_activation=True)
        else:
            data = loss.forward(y, out, sample_weight=sample_weight)
            self.backward(loss.backward(y, out, sample_weight=sample_weight))
        penalty = 0.0
        for reg, w, g in self._regularized:
            penalty += reg.penalty(w)
            reg.add_gradient(w, g)
        return BatchLoss(data, penalty), self.gradients

    def _fused(self, loss) -> bool:
        act = self.output_activation
        return act is not None and loss.fuses_with(act.name)

    def loss_value(self, x, y, loss, training: bool = False) -> float:
        """Mean data loss of one batch (no penalty), computed as in training."""
        loss = losses_mod.get(loss)
        out = self.last_output = self.forward(x, training=training)
        if self._fused(loss):
            return loss.logits_forward(y, self.output_layer.logits, out)
        return loss.forward(y, out)

    def predict(self, x, batch_size: int = 1024) -> np.ndarray:
        """Outputs for ``x`` in inference mode, computed in batches of ``batch_size``."""
        x = self.check_inputs(x)
        result = np.empty((len(x),) + self.output_shape, self.dtype)
        for start in range(0, len(x), batch_size):
            result[start : start + batch_size] = self.forward(x[start : start + batch_size], training=False)
        return result

    def check_inputs(self, x) -> np.ndarray:
        """Return ``x`` as a C-contiguous array of the model's dtype, or raise if its shape is wrong."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise DnnError(f"inputs must be numbers. Received: an array of dtype {x.dtype}")
        if x.shape[1:] != self.input_shape:
            if x.ndim == 2 and x.shape[1] == int(np.prod(self.input_shape)):
                x = x.reshape((len(x),) + self.input_shape)
            else:
                raise DnnError(
                    f"the data has samples of shape {list(x.shape[1:])}, but the model's input_shape is"
                    f" {list(self.input_shape)}."
                )
        return np.ascontiguousarray(x, dtype=self.dtype)

    # weights -----------------------------------------------------------------
    def weight_keys(self) -> list[str]:
        """NPZ keys ``layer{i}.{param}`` in ``get_weights`` order."""
        keys = []
        for i, layer in enumerate(self.layers):
            for s in sorted(layer.specs, key=lambda s: WEIGHT_ORDER.index(s.name)):
                keys.append(f"layer{i}.{s.name}")
        return keys

    def _weight_arrays(self) -> list[np.ndarray]:
        arrays = []
        for layer in self.layers:
            for s in sorted(layer.specs, key=lambda s: WEIGHT_ORDER.index(s.name)):
                arrays.append(layer.params[s.name])
        return arrays

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, per layer: kernel, bias; gamma, beta, moving_mean, moving_variance."""
        return [w.copy() for w in self._weight_arrays()]

    def set_weights(self, weights) -> None:
        """Set every weight from a list in ``get_weights`` order (shapes must match)."""
        targets = self._weight_arrays()
        keys = self.weight_keys()
        if len(weights) != len(targets):
            raise DnnError(f"set_weights expects {len(targets)} arrays. Received: {len(weights)}")
        for key, target, value in zip(keys, targets, weights):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise DnnError(f"weight {key} must have shape {target.shape}. Received: {value.shape}")
            target[...] = value

    def weights_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.weight_keys(), self.get_weights()))

    def set_weights_dict(self, stored: Mapping[str, np.ndarray], source: str = "weights") -> None:
        keys = self.weight_keys()
        missing = [k for k in keys if k not in stored]
        if missing:
            raise DnnError(f"{source}: missing weight {missing[0]!r}.{suggest(missing[0], stored)}")
        extra = [k for k in stored if k not in keys]
        if extra:
            raise DnnError(f"{source}: unexpected weight {extra[0]!r}.{suggest(extra[0], keys)}")
        for key, target in zip(keys, self._weight_arrays()):
            if stored[key].shape != target.shape:
                raise DnnError(
                    f"{source}: weight {key!r} must have shape {target.shape}. Received: {stored[key].shape}"
                )
        self.set_weights([stored[k] for k in keys])

    # description -------------------------------------------------------------
    def count_params(self) -> int:
        return self.summary().total

    def summary(self) -> Summary:
        rows, trainable, frozen = [], 0, 0
        for i, layer in enumerate(self.layers):
            t, f = layer.count_params()
            trainable += t
            frozen += f
            rows.append(SummaryRow(i, layer.name, layer.type_name, (None,) + tuple(layer.output_shape), t + f))
        return Summary(rows, trainable, frozen)

    def generators(self) -> dict[str, np.random.Generator]:
        """Every random generator of the layers, keyed ``layer{i}.{name}``."""
        return {f"layer{i}.{k}": g for i, layer in enumerate(self.layers) for k, g in layer.generators().items()}

    def get_config(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "dtype": self.dtype.name,
            "layers": [layer.get_config() for layer in self.layers],
        }
