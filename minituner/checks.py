"""The argument checks the teaching code shares (train(), generate(), the command line): each refuses a
value with a TypeError or ValueError whose message names the argument and says what is allowed, and
whose ``.field`` is that name (the command line turns it into its option, --batch-size for batch_size).
A config's fields are checked against their own declared domains (methods/options.py, ConfigError).
"""

from __future__ import annotations

import math
import numbers


def refuse(kind: type, field: str, message: str) -> Exception:
    """An error of `kind` (TypeError, ValueError) about argument `field`: raise refuse(...)."""
    error = kind(message)
    error.field = field
    return error


def int_in(name: str, value, low: int, high: int | None = None) -> int:
    """An int (not a bool) with low <= value <= high (no upper bound with high None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise refuse(TypeError, name, f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        raise refuse(ValueError, name, f"{name} must be >= {low}{f' and <= {high}' if high is not None else ''}, "
                                       f"got {value}")
    return int(value)


def real_in(name: str, value, positive: bool, high: float = math.inf) -> float:
    """A finite number (not a bool) >= 0 (> 0 when positive) and <= high."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise refuse(TypeError, name, f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0) or value > high:
        raise refuse(ValueError, name, f"{name} must be a finite number {'> 0' if positive else '>= 0'}"
                                       f"{f' and <= {high:g}' if high < math.inf else ''}, got {value}")
    return float(value)


def boolean(name: str, value) -> bool:
    """True or False: not "no", not 0."""
    if not isinstance(value, bool):
        raise refuse(TypeError, name, f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value
