"""The loss contract: ``forward`` the mean loss of a batch, ``backward`` its gradient with respect to the model's
output; the cross-entropies' shared handling of ``from_logits``. The losses themselves are in ``losses``."""

from __future__ import annotations

import numpy as np

from dnncli.errors import DnnError, check_bool

EPSILON = 1e-7  # keras.backend.epsilon()


def logsumexp(Z: np.ndarray) -> np.ndarray:
    # the ufuncs' own reduce: the ndarray methods add a Python layer per call, felt at batch size 1
    m = np.maximum.reduce(Z, axis=-1)
    shifted = Z - m[:, None]
    np.exp(shifted, out=shifted)
    return m + np.log(np.add.reduce(shifted, axis=-1))


class Loss:
    """Base class. ``y_pred`` is the model's output: probabilities, or logits if ``from_logits``."""

    name = "loss"
    logits_activation: str | None = None  # the output activation this loss can fuse with
    from_logits = False
    classifies = False  # the targets are classes (not values to regress)
    targets = "values"  # their layout: values, one-hot (rows), labels (integers) or binary (0/1 columns)

    # What the loss knows of its task: how raw labels become its targets, how the model's outputs become
    # probabilities or values, and which class an output or a target stands for.
    def encode_labels(self, y, n_outputs: int, dtype) -> np.ndarray:
        """Raw labels from a dataset in the loss's target layout (before ``prepare_targets``)."""
        return np.asarray(y)

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        """The model's output as the loss reads it: probabilities for a classifier, values otherwise."""
        return output

    def uninformed(self, n_outputs: int) -> float | None:
        """The loss of a model that knows nothing (equal probabilities for every class); None for values,
        where it depends on the targets."""
        return None

    def predicted_classes(self, probabilities: np.ndarray) -> np.ndarray | None:
        """The class each row of ``probabilities`` stands for; None where there is no single class per row."""
        return None

    def target_classes(self, y: np.ndarray) -> np.ndarray | None:
        """The class of each prepared target row; None where there is no single class per row."""
        return None

    def forward(self, y_true, y_pred, sample_weight=None) -> float:
        raise NotImplementedError

    def backward(self, y_true, y_pred, out=None, sample_weight=None) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _weighted_mean(per_sample: np.ndarray, sample_weight: np.ndarray) -> float:
        """``sum(w_i * l_i) / N``: weighted per-sample losses over the batch size (Keras's reduction)."""
        return float(np.vdot(sample_weight, per_sample) / len(per_sample))

    @staticmethod
    def _weigh_rows(grad: np.ndarray, sample_weight) -> np.ndarray:
        """The gradient of the weighted loss from the unweighted one: each sample's row times its weight."""
        if sample_weight is not None:
            grad *= np.reshape(sample_weight, (-1,) + (1,) * (grad.ndim - 1))
        return grad

    def __call__(self, y_true, y_pred, sample_weight=None) -> float:
        return self.forward(y_true, y_pred, sample_weight)

    def fuses_with(self, activation_name: str) -> bool:
        """Whether the gradient can skip the output activation's backward pass."""
        return not self.from_logits and activation_name == self.logits_activation

    # Losses that fuse override these two: value and dL/dZ from the logits Z.
    def logits_forward(self, y_true, Z, A=None, sample_weight=None) -> float:
        """Mean loss from the logits ``Z``; ``A``, if given, is ``Z`` through the fused activation."""
        raise NotImplementedError

    def logits_backward(self, y_true, Z, A, out=None, sample_weight=None) -> np.ndarray:
        """dL/dZ, where ``A`` is ``Z`` through the fused activation."""
        raise NotImplementedError

    def prepare_targets(self, y, n_outputs: int, dtype) -> np.ndarray:
        """Check ``y`` against the output width and return it in the loss's layout.

        Done once per dataset, so that the training loop does no conversion.
        """
        y = np.asarray(y)
        if y.ndim == 1 and n_outputs == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise DnnError(
                f"{self.name} needs targets of shape (samples, {n_outputs}) to match the output layer."
                f" Received: shape {y.shape}"
            )
        if not np.issubdtype(y.dtype, np.number) and y.dtype != bool:
            raise DnnError(f"{self.name} needs numeric targets. Received: dtype {y.dtype}")
        y = np.ascontiguousarray(y, dtype=dtype)
        if not np.isfinite(y).all():
            raise DnnError(f"{self.name}: the targets hold NaN or infinity.")
        return y

    def get_config(self) -> dict:
        return {"name": self.name}


class CrossEntropy(Loss):
    """A cross-entropy: reads probabilities, or with ``from_logits`` the logits through its ``logits_activation``."""

    def __init__(self, from_logits: bool = False):
        self.from_logits = check_bool(from_logits, f"{self.name}.from_logits")

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}
