"""Strict JSON for every ``--json`` and every JSON file a run or sweep writes: NaN and infinities become
``null`` (JSON has no token for them, and ``json.loads`` elsewhere would refuse ``NaN``), NumPy scalars and
arrays plain numbers and lists, mapping keys strings, anything else (a path) its text."""

from __future__ import annotations

import json
import math

import numpy as np


def strict(value):
    """``value`` with every non-finite float as None and every NumPy value as its Python equivalent."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)  # a path, a dtype: as it reads


def dumps(value, indent: int | None = None) -> str:
    """``json.dumps`` of ``strict(value)``, refusing anything that is still not JSON."""
    return json.dumps(strict(value), indent=indent, allow_nan=False)
