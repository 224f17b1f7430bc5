"""Argument checks shared by the library and the pipeline stages.

Each returns the value (as int / float) when it is acceptable and otherwise raises
ValueError naming the argument and what it accepts, e.g.
``chunk_steps must be an integer >= 1, got 0``.
"""
from __future__ import annotations

import math
import numbers


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name: str, value) -> int:
    """`value` as an int when it is an integer >= 1 (bools refused)."""
    if not _is_integer(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """`value` as an int when it is an integer >= 0 (bools refused)."""
    if not _is_integer(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def positive_float(name: str, value) -> float:
    """`value` as a float when it is a finite number > 0 (bools refused)."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def non_negative_float(name: str, value) -> float:
    """`value` as a float when it is a finite number >= 0 (bools refused)."""
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
