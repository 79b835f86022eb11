"""The one rule for seeds and whole numbers, without torch (the ONNX runner imports it too)."""

from __future__ import annotations

import operator
from typing import Optional

MAX_SEED = 2**63 - 1  # torch's generators, numpy's default_rng and its Philox keys all take 0 .. this
SEED_EXPECTED = "an integer from 0 to 2**63 - 1 (or None: the global RNG)"


def whole_number(value) -> Optional[int]:
    """value as an int when it is one (a Python, numpy or 0-d torch integer; not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def seed_problem(seed, name: str = "seed") -> Optional[str]:
    """What is wrong with ``seed``, in words naming it, or None for None and 0 .. MAX_SEED."""
    if seed is None:
        return None
    value = whole_number(seed)
    if value is None or not 0 <= value <= MAX_SEED:
        return f"{name}: {seed!r}, expected {SEED_EXPECTED}"
    return None
