"""Optimizers with Keras 3's update rules and defaults.

An optimizer knows nothing of models: ``apply(variables, grads)`` updates
arrays in place, given lists of arrays of matching shapes. Per step, in
Keras's order: clip the gradients, apply decoupled weight decay, update each
variable with the learning rate at the current ``iterations``, then count the
step. Every update is done with in-place ufuncs over preallocated scratch
arrays, so a step allocates nothing but a few scalars.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from dnncli.errors import DnnError, check_bool, check_float
from dnncli.nn import schedules
from dnncli.nn.clipping import Clipping, check_clip
from dnncli.registry import Registry


class Optimizer:
    """Base class: learning rate (float or schedule), clipping and weight decay.

    Parameters
    ----------
    learning_rate : float or schedule spec
        A number, or ``{name: exponential_decay | piecewise_constant_decay | cosine_decay, ...}``.
    clipnorm : float or None, default=None
        Rescale each variable's gradient to at most this L2 norm.
    clipvalue : float or None, default=None
        Clip each gradient element to ``[-clipvalue, clipvalue]``.
    global_clipnorm : float or None, default=None
        Rescale all gradients together to at most this global L2 norm.
    weight_decay : float or None, default=None
        Decoupled decay: ``w -= w * weight_decay * learning_rate`` before the update.
    """

    name = "optimizer"
    slot_names: tuple[str, ...] = ()
    scratch_count = 1  # temporaries per variable that an update needs

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None, weight_decay=None):
        n = self.name
        if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
            self._learning_rate = check_float(learning_rate, f"{n}.learning_rate", 0.0)
        elif not isinstance(learning_rate, (dict, schedules.Schedule)):
            raise DnnError(
                f"{n}.learning_rate must be a number or a schedule mapping. Received: {learning_rate!r}",
                ("learning_rate",),
            )
        else:
            self._learning_rate = schedules.get(learning_rate, "learning_rate")
        self.clipping = Clipping(
            check_clip(clipnorm, f"{n}.clipnorm"),
            check_clip(clipvalue, f"{n}.clipvalue"),
            check_clip(global_clipnorm, f"{n}.global_clipnorm"),
            owner=n,
        )
        self.clipnorm, self.clipvalue = self.clipping.clipnorm, self.clipping.clipvalue
        self.global_clipnorm = self.clipping.global_clipnorm
        self.weight_decay = None if weight_decay is None else check_float(weight_decay, f"{n}.weight_decay", 0.0)
        self.iterations = 0
        self.slots: list[dict[str, np.ndarray]] | None = None
        self._scratch: list[np.ndarray] = []

    # learning rate -------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if isinstance(lr, schedules.Schedule) else lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if isinstance(self._learning_rate, schedules.Schedule):
            raise DnnError(f"{self.name}: the learning rate follows a schedule and cannot be set.")
        self._learning_rate = check_float(value, f"{self.name}.learning_rate", 0.0)

    @property
    def per_variable(self) -> bool:
        """Whether the update needs variables one by one (per-variable clipnorm)."""
        return self.clipnorm is not None

    # the step ------------------------------------------------------------------
    def build(self, variables) -> None:
        """Create the slots (moments, accumulators) for ``variables``."""
        self.slots = [{k: self.initial_slot(k, v) for k in self.slot_names} for v in variables]
        self._scratch = [[np.empty_like(v) for _ in range(self.scratch_count)] for v in variables]
        self._shapes = [v.shape for v in variables]

    def initial_slot(self, name: str, variable: np.ndarray) -> np.ndarray:
        return np.zeros_like(variable)

    def apply(self, variables, grads) -> None:
        """One step: update each array of ``variables`` in place from ``grads`` (clipped in place)."""
        shapes = [v.shape for v in variables]
        if self.slots is None:
            self.build(variables)
        elif shapes != self._shapes:
            raise DnnError(f"{self.name}: the variables differ from those the optimizer was built for.")
        lr = self.learning_rate
        self.clip(grads)
        if self.weight_decay:
            decay = 1.0 - self.weight_decay * lr
            for v in variables:
                v *= decay
        for v, g, slots, scratch in zip(variables, grads, self.slots, self._scratch):
            self.update_step(v, g, slots, lr, *scratch)
        self.iterations += 1

    def update_step(self, v, g, slots, lr, tmp) -> None:
        raise NotImplementedError

    def clip(self, grads) -> None:
        """Clip ``grads`` in place by the configured rule (``clipping.Clipping``)."""
        self.clipping(grads)

    # state -------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Iterations and slots as arrays keyed ``iterations`` and ``{i}.{slot}``, for checkpoints."""
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for i, slots in enumerate(self.slots or []):
            for k, arr in slots.items():
                state[f"{i}.{k}"] = arr.copy()
        return state

    def set_state(self, state, variables) -> None:
        """Restore what ``get_state`` returned, for the same ``variables``."""
        self.build(variables)
        self.iterations = int(state["iterations"])
        if self.iterations == 0 and not any("." in k for k in state):
            return  # saved before its first step (a run's epoch-0 checkpoint): the built slots are that state
        for i, slots in enumerate(self.slots):
            for k in slots:
                key = f"{i}.{k}"
                if key not in state or state[key].shape != slots[k].shape:
                    raise DnnError(f"{self.name}: the saved optimizer state has no matching {key!r}.")
                slots[k][...] = state[key]

    def get_config(self) -> dict:
        lr = self._learning_rate
        cfg = {"name": self.name, "learning_rate": lr.get_config() if isinstance(lr, schedules.Schedule) else lr}
        for key in REGISTRY.parameters(self.name):
            cfg.setdefault(key, getattr(self, key))
        return cfg


class SGD(Optimizer):
    """``m = momentum*m - lr*g``; ``w += m`` (nesterov: ``w += momentum*m - lr*g``).

    Without momentum, plain ``w -= lr*g``.
    """

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, **common):
        super().__init__(learning_rate, **common)
        self.momentum = check_float(momentum, "sgd.momentum", 0.0, 1.0)
        self.nesterov = check_bool(nesterov, "sgd.nesterov")
        self.slot_names = ("momentum",) if self.momentum else ()
        self.scratch_count = 2 if self.nesterov else 1

    def update_step(self, v, g, slots, lr, tmp, tmp2=None):
        if not self.momentum:
            np.multiply(g, lr, out=tmp)
            v -= tmp
            return
        m = slots["momentum"]
        m *= self.momentum
        np.multiply(g, lr, out=tmp)
        m -= tmp
        if self.nesterov:
            np.multiply(m, self.momentum, out=tmp2)
            tmp2 -= tmp
            v += tmp2
        else:
            v += m


class RMSprop(Optimizer):
    """``s = rho*s + (1-rho)*g**2``; ``w -= lr*g / sqrt(s + epsilon)``.

    Centered, the denominator is ``s - mean(g)**2 + epsilon``; with momentum
    the increments accumulate in a velocity that is subtracted.
    """

    name = "rmsprop"

    def __init__(
        self,
        learning_rate=0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **common,
    ):
        super().__init__(learning_rate, **common)
        self.rho = check_float(rho, "rmsprop.rho", 0.0, 1.0)
        self.momentum = check_float(momentum, "rmsprop.momentum", 0.0, 1.0)
        self.epsilon = check_float(epsilon, "rmsprop.epsilon", 0.0, low_open=True)
        self.centered = check_bool(centered, "rmsprop.centered")
        self.slot_names = (
            ("velocity",) + (("average_gradient",) if self.centered else ()) + (("momentum",) if self.momentum else ())
        )

    def update_step(self, v, g, slots, lr, tmp):
        rho = self.rho
        s = slots["velocity"]
        s *= rho
        np.square(g, out=tmp)
        tmp *= 1.0 - rho
        s += tmp
        if self.centered:
            a = slots["average_gradient"]
            a *= rho
            np.multiply(g, 1.0 - rho, out=tmp)
            a += tmp
            np.square(a, out=tmp)
            np.subtract(s, tmp, out=tmp)
            tmp += self.epsilon
        else:
            np.add(s, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        if self.momentum:
            m = slots["momentum"]
            m *= self.momentum
            m += tmp
            v -= m
        else:
            v -= tmp


class Adam(Optimizer):
    """Adam with the bias correction folded into the step: ``w -= alpha_t * m / (sqrt(v) + epsilon)``."""

    name = "adam"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **common,
    ):
        super().__init__(learning_rate, **common)
        self.beta_1 = check_float(beta_1, f"{self.name}.beta_1", 0.0, 1.0, high_open=True)
        self.beta_2 = check_float(beta_2, f"{self.name}.beta_2", 0.0, 1.0, high_open=True)
        self.epsilon = check_float(epsilon, f"{self.name}.epsilon", 0.0, low_open=True)
        self.amsgrad = check_bool(amsgrad, f"{self.name}.amsgrad")
        self.slot_names = ("m", "v") + (("v_hat",) if self.amsgrad else ())

    def apply(self, variables, grads):
        t = self.iterations + 1
        self._alpha_factor = math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        super().apply(variables, grads)

    def update_step(self, v, g, slots, lr, tmp):
        # The moments are kept unscaled, m' = m / (1 - beta_1) and v' = v / (1 - beta_2), which saves two
        # passes over the parameters per step; the constants fold into the step size and epsilon:
        # w -= alpha * m / (sqrt(v) + eps)  ==  w -= c * m' / (sqrt(v') + eps / sqrt(1 - beta_2)).
        m, s = slots["m"], slots["v"]
        m *= self.beta_1
        m += g
        np.square(g, out=tmp)
        s *= self.beta_2
        s += tmp
        if self.amsgrad:
            np.maximum(slots["v_hat"], s, out=slots["v_hat"])
            s = slots["v_hat"]
        root = math.sqrt(1.0 - self.beta_2)
        np.sqrt(s, out=tmp)
        tmp += self.epsilon / root
        np.divide(m, tmp, out=tmp)
        tmp *= lr * self._alpha_factor * (1.0 - self.beta_1) / root
        v -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004, as Keras)."""

    name = "adamw"

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **common,
    ):
        if weight_decay is None:
            raise DnnError("adamw.weight_decay must be a number. Received: None", ("weight_decay",))
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **common)


class Adagrad(Optimizer):
    """``acc += g**2``; ``w -= lr*g / sqrt(acc + epsilon)``; acc starts at ``initial_accumulator_value``."""

    name = "adagrad"
    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **common):
        super().__init__(learning_rate, **common)
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "adagrad.initial_accumulator_value", 0.0
        )
        self.epsilon = check_float(epsilon, "adagrad.epsilon", 0.0, low_open=True)

    def initial_slot(self, name, variable):
        return np.full_like(variable, self.initial_accumulator_value)

    def update_step(self, v, g, slots, lr, tmp):
        acc = slots["accumulator"]
        np.square(g, out=tmp)
        acc += tmp
        np.add(acc, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        v -= tmp


class Adadelta(Optimizer):
    """``delta = -sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g``; ``w += lr * delta`` (Keras's lr default 0.001)."""

    name = "adadelta"
    slot_names = ("accumulated_grad", "accumulated_delta_var")
    scratch_count = 2

    def __init__(self, learning_rate=0.001, rho: float = 0.95, epsilon: float = 1e-7, **common):
        super().__init__(learning_rate, **common)
        self.rho = check_float(rho, "adadelta.rho", 0.0, 1.0)
        self.epsilon = check_float(epsilon, "adadelta.epsilon", 0.0, low_open=True)

    def update_step(self, v, g, slots, lr, tmp, tmp2):
        rho, eps = self.rho, self.epsilon
        ag, adv = slots["accumulated_grad"], slots["accumulated_delta_var"]
        ag *= rho
        np.square(g, out=tmp)
        tmp *= 1.0 - rho
        ag += tmp
        # delta = -sqrt(adv + eps) * g / sqrt(ag + eps), built in tmp
        np.add(adv, eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp *= g
        np.add(ag, eps, out=tmp2)
        np.sqrt(tmp2, out=tmp2)
        np.divide(tmp, tmp2, out=tmp)
        np.negative(tmp, out=tmp)
        adv *= rho
        np.square(tmp, out=tmp2)
        tmp2 *= 1.0 - rho
        adv += tmp2
        tmp *= lr
        v += tmp


OPTIMIZERS = {cls.name: cls for cls in (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta)}
REGISTRY = Registry("optimizer", OPTIMIZERS)
REGISTRY.base = Optimizer


def get(spec, key=()) -> Optimizer:
    """Return the optimizer for a name or ``{name: adam, learning_rate: 0.001, clipnorm: 1.0, ...}``."""
    return REGISTRY.get(spec, key)
