"""Seeded augmentation of the training split, applied to each epoch's permuted buffer in place.

Vectorized: flips are one fancy-indexed assignment; shifts group the samples
by their (dy, dx) offset, at most (2*shift + 1)**2 groups, each one slice copy.
"""

from __future__ import annotations

import numpy as np

from dnncli.errors import DnnError, check_bool, check_float, check_int
from dnncli.registry import build_section, section_config


class Augmenter:
    """Gaussian noise on inputs; random shifts (zero-filled) and horizontal flips of images.

    Parameters
    ----------
    gaussian_noise : float, default=0.0
        Standard deviation of noise added to the (scaled) inputs.
    shift : int, default=0
        Largest shift in pixels, each way, along both image axes.
    horizontal_flip : bool, default=False
        Mirror half of the images, chosen at random, left to right.
    """

    def __init__(self, gaussian_noise: float = 0.0, shift: int = 0, horizontal_flip: bool = False):
        self.gaussian_noise = check_float(gaussian_noise, "data.augment.gaussian_noise", 0.0)
        self.shift = check_int(shift, "data.augment.shift", minimum=0)
        self.horizontal_flip = check_bool(horizontal_flip, "data.augment.horizontal_flip")

    @property
    def active(self) -> bool:
        return bool(self.gaussian_noise or self.shift or self.horizontal_flip)

    @property
    def needs_images(self) -> bool:
        return bool(self.shift or self.horizontal_flip)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> None:
        n = len(x)
        if self.horizontal_flip:
            flip = np.flatnonzero(rng.random(n) < 0.5)
            x[flip] = x[flip][..., ::-1]
        if self.shift:
            s = self.shift
            offsets = rng.integers(-s, s + 1, size=(n, 2))
            keys = (offsets[:, 0] + s) * (2 * s + 1) + (offsets[:, 1] + s)
            for key in np.unique(keys):
                dy, dx = divmod(int(key), 2 * s + 1)
                dy, dx = dy - s, dx - s
                if dy == 0 and dx == 0:
                    continue
                idx = np.flatnonzero(keys == key)
                x[idx] = _shifted(x[idx], dy, dx)
        if self.gaussian_noise:
            x += rng.standard_normal(x.shape, dtype=x.dtype) * np.asarray(self.gaussian_noise, x.dtype)

    def get_config(self) -> dict:
        return section_config(self)


def _shifted(block: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(block)
    h, w = block.shape[-2], block.shape[-1]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = block[..., ys, xs]
    return out


def build(spec) -> Augmenter:
    """An augmenter from ``data.augment`` (None or a mapping of the constructor's arguments)."""
    try:
        return build_section(Augmenter, spec, "data.augment")
    except DnnError as err:
        raise err.at("augment") from None
